package main

import (
	"context"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// executorService is not built yet: it registers the generated Unimplemented
// server, so every RPC answers Unimplemented and nothing pretends to work.
func executorService() *serviceSpec {
	rules := auth.Rules{}
	for _, m := range executorv1.ExecutorService_ServiceDesc.Methods {
		rules["/"+executorv1.ExecutorService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	for _, m := range executorv1.ExecutorService_ServiceDesc.Streams {
		rules["/"+executorv1.ExecutorService_ServiceDesc.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	return &serviceSpec{
		Name:     "executor",
		FullName: executorv1.ExecutorService_ServiceDesc.ServiceName,
		Rules:    rules,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			executorv1.RegisterExecutorServiceServer(env.Server.GRPC(), unimplementedExecutorService{})
			return nil, nil
		},
	}
}

type unimplementedExecutorService struct {
	executorv1.UnimplementedExecutorServiceServer
}
