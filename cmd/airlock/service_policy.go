package main

import (
	"context"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// policyService is not built yet: it registers the generated Unimplemented
// server, so every RPC answers Unimplemented and nothing pretends to work.
func policyService() *serviceSpec {
	rules := auth.Rules{}
	for _, m := range policyv1.PolicyService_ServiceDesc.Methods {
		rules["/"+policyv1.PolicyService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	for _, m := range policyv1.PolicyService_ServiceDesc.Streams {
		rules["/"+policyv1.PolicyService_ServiceDesc.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	return &serviceSpec{
		Name:     "policy",
		FullName: policyv1.PolicyService_ServiceDesc.ServiceName,
		Rules:    rules,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			policyv1.RegisterPolicyServiceServer(env.Server.GRPC(), unimplementedPolicyService{})
			return nil, nil
		},
	}
}

type unimplementedPolicyService struct {
	policyv1.UnimplementedPolicyServiceServer
}
