package main

import (
	"context"

	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// orchestratorService is not built yet: it registers the generated Unimplemented
// server, so every RPC answers Unimplemented and nothing pretends to work.
func orchestratorService() *serviceSpec {
	rules := auth.Rules{}
	for _, m := range orchestratorv1.OrchestratorService_ServiceDesc.Methods {
		rules["/"+orchestratorv1.OrchestratorService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	for _, m := range orchestratorv1.OrchestratorService_ServiceDesc.Streams {
		rules["/"+orchestratorv1.OrchestratorService_ServiceDesc.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	return &serviceSpec{
		Name:     "orchestrator",
		FullName: orchestratorv1.OrchestratorService_ServiceDesc.ServiceName,
		Rules:    rules,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			orchestratorv1.RegisterOrchestratorServiceServer(env.Server.GRPC(), unimplementedOrchestratorService{})
			return nil, nil
		},
	}
}

type unimplementedOrchestratorService struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
}
