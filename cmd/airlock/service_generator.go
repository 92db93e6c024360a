package main

import (
	"context"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// generatorService is not built yet: it registers the generated Unimplemented
// server, so every RPC answers Unimplemented and nothing pretends to work.
func generatorService() *serviceSpec {
	rules := auth.Rules{}
	for _, m := range generatorv1.GeneratorService_ServiceDesc.Methods {
		rules["/"+generatorv1.GeneratorService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	for _, m := range generatorv1.GeneratorService_ServiceDesc.Streams {
		rules["/"+generatorv1.GeneratorService_ServiceDesc.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	return &serviceSpec{
		Name:     "generator",
		FullName: generatorv1.GeneratorService_ServiceDesc.ServiceName,
		Rules:    rules,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			generatorv1.RegisterGeneratorServiceServer(env.Server.GRPC(), unimplementedGeneratorService{})
			return nil, nil
		},
	}
}

type unimplementedGeneratorService struct {
	generatorv1.UnimplementedGeneratorServiceServer
}
