package main

import (
	"context"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// approvalService is not built yet: it registers the generated Unimplemented
// server, so every RPC answers Unimplemented and nothing pretends to work.
func approvalService() *serviceSpec {
	rules := auth.Rules{}
	for _, m := range approvalv1.ApprovalService_ServiceDesc.Methods {
		rules["/"+approvalv1.ApprovalService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	for _, m := range approvalv1.ApprovalService_ServiceDesc.Streams {
		rules["/"+approvalv1.ApprovalService_ServiceDesc.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	return &serviceSpec{
		Name:     "approval",
		FullName: approvalv1.ApprovalService_ServiceDesc.ServiceName,
		Rules:    rules,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			approvalv1.RegisterApprovalServiceServer(env.Server.GRPC(), unimplementedApprovalService{})
			return nil, nil
		},
	}
}

type unimplementedApprovalService struct {
	approvalv1.UnimplementedApprovalServiceServer
}
