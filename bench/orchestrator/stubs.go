package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
)

// The stubs answer at once, so what the benchmark measures is the
// orchestrator's own work: its store, its state machine and its gRPC hops.

type stubPolicy struct {
	policyv1.UnimplementedPolicyServiceServer
}

func (stubPolicy) Check(_ context.Context, req *policyv1.CheckRequest) (*policyv1.CheckResponse, error) {
	h := sha256.Sum256([]byte(req.GetCode()))
	return &policyv1.CheckResponse{Verdict: policyv1.Verdict_VERDICT_ALLOW, PolicyId: "default", PolicyVersion: "bench",
		CodeSha256: hex.EncodeToString(h[:]), AllowedImports: []string{"pandas"},
		Limits: &policyv1.RunLimits{Timeout: durationpb.New(10 * time.Second), MemoryBytes: 256 << 20}}, nil
}

type stubBudget struct {
	budgetv1.UnimplementedBudgetServiceServer
	mu sync.Mutex
	n  int
}

func (b *stubBudget) Reserve(context.Context, *budgetv1.ReserveRequest) (*budgetv1.ReserveResponse, error) {
	b.mu.Lock()
	b.n++
	id := fmt.Sprintf("rsv%d", b.n)
	b.mu.Unlock()
	return &budgetv1.ReserveResponse{Reservation: &budgetv1.Reservation{Id: id}}, nil
}

func (b *stubBudget) Commit(context.Context, *budgetv1.CommitRequest) (*budgetv1.CommitResponse, error) {
	return &budgetv1.CommitResponse{}, nil
}

func (b *stubBudget) Release(context.Context, *budgetv1.ReleaseRequest) (*budgetv1.ReleaseResponse, error) {
	return &budgetv1.ReleaseResponse{}, nil
}

type stubExecutor struct {
	executorv1.UnimplementedExecutorServiceServer
}

func (stubExecutor) ExecuteStream(req *executorv1.ExecuteStreamRequest, stream executorv1.ExecutorService_ExecuteStreamServer) error {
	out := []byte("region,total\nnorth,10\n")
	h := sha256.Sum256(out)
	if err := stream.Send(&executorv1.ExecuteStreamResponse{Event: &executorv1.ExecuteStreamResponse_Chunk{
		Chunk: &executorv1.OutputChunk{Stream: executorv1.Stream_STREAM_STDOUT, Data: []byte("done\n")}}}); err != nil {
		return err
	}
	return stream.Send(&executorv1.ExecuteStreamResponse{Event: &executorv1.ExecuteStreamResponse_Result{Result: &executorv1.ExecutionResult{
		TerminationReason: executorv1.TerminationReason_TERMINATION_REASON_EXITED, Stdout: []byte("done\n"),
		OutputFiles: []*executorv1.OutputFile{{Name: "result.csv", Content: out, SizeBytes: int64(len(out)), Sha256: hex.EncodeToString(h[:])}},
		Usage:       &executorv1.ResourceUsage{WallTime: durationpb.New(0), CpuTime: durationpb.New(0)},
	}}})
}
