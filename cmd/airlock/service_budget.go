package main

import (
	"context"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// budgetService is not built yet: it registers the generated Unimplemented
// server, so every RPC answers Unimplemented and nothing pretends to work.
func budgetService() *serviceSpec {
	rules := auth.Rules{}
	for _, m := range budgetv1.BudgetService_ServiceDesc.Methods {
		rules["/"+budgetv1.BudgetService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	for _, m := range budgetv1.BudgetService_ServiceDesc.Streams {
		rules["/"+budgetv1.BudgetService_ServiceDesc.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	}
	return &serviceSpec{
		Name:     "budget",
		FullName: budgetv1.BudgetService_ServiceDesc.ServiceName,
		Rules:    rules,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			budgetv1.RegisterBudgetServiceServer(env.Server.GRPC(), unimplementedBudgetService{})
			return nil, nil
		},
	}
}

type unimplementedBudgetService struct {
	budgetv1.UnimplementedBudgetServiceServer
}
