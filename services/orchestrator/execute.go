package orchestrator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
)

func executorLimits(l *policyv1.RunLimits) *executorv1.Limits {
	if l == nil {
		return nil
	}
	return &executorv1.Limits{
		Timeout: l.GetTimeout(), CpuTime: l.GetCpuTime(), MemoryBytes: l.GetMemoryBytes(),
		MaxProcesses: l.GetMaxProcesses(), MaxOutputBytes: l.GetMaxOutputBytes(), MaxOutputFiles: l.GetMaxOutputFiles(),
		MaxStdoutBytes: l.GetMaxStdoutBytes(), MaxStderrBytes: l.GetMaxStderrBytes(),
	}
}

// interruptedReason is why a run found mid-execution after a restart fails.
const interruptedReason = "the orchestrator stopped while attempt %d was executing; it is not run again, " +
	"so code never runs twice without a record; submit the run again"

func (e *Engine) stepExecute(ctx context.Context, r *Run) error {
	att := r.LastAttempt()
	if att == nil || att.Check == nil {
		return end(stFailed, "executing without checked code")
	}
	if att.Status == AttemptExecuted && att.Execution != nil {
		// The process stopped after storing the result and before the run
		// moved on: finish settling it.
		res, ok, err := e.settling(ctx, r, kindCompute)
		if err != nil {
			return err
		}
		if ok {
			return e.settleExecution(ctx, r, att, res)
		}
	}
	if att.Status == AttemptExecuting || att.Status == AttemptExecuted {
		return end(stFailed, interruptedReason, att.Number)
	}
	if sha256Hex(att.Code) != att.CodeSHA256 {
		return end(stFailed, "attempt %d's code does not match its recorded hash", att.Number)
	}
	if att.Check.GetVerdict() == policyv1.Verdict_VERDICT_REVIEW {
		resp, err := e.clients.Approval.CheckApproval(ctx, &approvalv1.CheckApprovalRequest{
			RunId: r.ID, CodeSha256: att.CodeSHA256, PolicyVersion: att.Check.GetPolicyVersion(),
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return end(stFailed, "confirming the approval: %s", status.Convert(err).Message())
		}
		if !resp.GetApproved() {
			return end(stFailed, "no approval matches code %s under policy version %s", att.CodeSHA256, att.Check.GetPolicyVersion())
		}
	} else if att.Check.GetVerdict() != policyv1.Verdict_VERDICT_ALLOW {
		return end(stFailed, "attempt %d was not allowed by the policy", att.Number)
	}
	limits := executorLimits(att.Check.GetLimits())
	if limits != nil && limits.GetMaxOutputBytes() > e.cfg.MaxOutputBytes {
		limits.MaxOutputBytes = e.cfg.MaxOutputBytes
	}
	timeout, mem, cpu := e.cfg.DefaultTimeout, e.cfg.DefaultMemoryBytes, time.Duration(0)
	if d := limits.GetTimeout(); d != nil && d.AsDuration() > 0 {
		timeout = d.AsDuration()
	}
	if m := limits.GetMemoryBytes(); m > 0 {
		mem = m
	}
	cpu = timeout
	if d := limits.GetCpuTime(); d != nil && d.AsDuration() > 0 {
		cpu = d.AsDuration()
	}
	estimate, err := e.prices.Compute(cpu, timeout, mem)
	if err != nil {
		return end(stFailed, "pricing the execution: %v", err)
	}
	inputs, err := e.readInputs(ctx, r)
	if err != nil {
		return err
	}
	// The attempt is recorded as executing, with the reservation, before the
	// sandbox starts: after a crash it is never run again.
	att.Status = AttemptExecuting
	res, err := e.reserve(ctx, r, kindCompute, estimate, timeout+5*time.Minute, "", func(st Store) error {
		// Fencing: only the run's current owner may record the start.
		if err := st.RenewLease(ctx, r.ID, e.id, time.Now().Add(e.cfg.LeaseTTL)); errors.Is(err, ErrConflict) {
			return errLostLease
		} else if err != nil {
			return err
		}
		return st.PutAttempt(ctx, r.ID, att)
	})
	if err != nil {
		return err
	}
	result, err := e.execute(ctx, r, &executorv1.ExecuteRequest{
		Code: att.Code, Inputs: inputs, Limits: limits, AllowedImports: att.Check.GetAllowedImports(), RunId: r.ID,
	})
	if err != nil {
		e.release(ctx, r, res, "execution failed")
		if ctx.Err() != nil {
			return ctx.Err()
		}
		att.Status = AttemptExecuted
		att.Execution = &executorv1.ExecutionResult{TerminationReason: executorv1.TerminationReason_TERMINATION_REASON_KILLED,
			Message: status.Convert(err).Message()}
		_ = e.store.PutAttempt(context.WithoutCancel(ctx), r.ID, att)
		return end(stFailed, "executing attempt %d: %s", att.Number, status.Convert(err).Message())
	}
	actual, err := e.prices.Compute(result.GetUsage().GetCpuTime().AsDuration(), result.GetUsage().GetWallTime().AsDuration(), mem)
	if err != nil {
		actual = estimate
	}
	files := result.GetOutputFiles()
	result.OutputFiles = nil
	for _, f := range files {
		result.OutputFiles = append(result.OutputFiles, &executorv1.OutputFile{Name: f.GetName(), SizeBytes: f.GetSizeBytes(), Sha256: f.GetSha256()})
	}
	att.Status = AttemptExecuted
	att.Execution = result
	att.ExecutionMicros = actual
	// The result, the outputs and what to charge are stored before the budget
	// is charged: a process that stops after the charge finishes the run from
	// them when it starts again, rather than failing a run whose code ran.
	err = e.store.InTx(context.WithoutCancel(ctx), func(st Store) error {
		for _, f := range files {
			if err := e.saveOutput(ctx, st, r, f); err != nil {
				return err
			}
		}
		if err := st.PutAttempt(ctx, r.ID, att); err != nil {
			return err
		}
		return st.SettleReservation(ctx, res.ID, actual)
	})
	if err != nil {
		return err
	}
	res.Settling, res.Actual = true, actual
	return e.settleExecution(ctx, r, att, res)
}

// settleExecution charges a finished attempt's stored result to the budget
// and moves the run on, in one transaction with the run's cost.
func (e *Engine) settleExecution(ctx context.Context, r *Run, att *Attempt, res Reservation) error {
	result := att.Execution
	to, msg := stFailed, ""
	why := describeExit(result)
	switch {
	case result.GetTerminationReason() == executorv1.TerminationReason_TERMINATION_REASON_EXITED && result.GetExitCode() == 0:
		to, msg = stSucceeded, fmt.Sprintf("attempt %d succeeded with %d output files", att.Number, len(result.GetOutputFiles()))
	case r.Prompt != "" && att.Number < r.MaxAttempts:
		to, msg = stGenerate, fmt.Sprintf("attempt %d %s; generating attempt %d with the error", att.Number, why, att.Number+1)
	}
	err := e.commit(ctx, r, res, res.Actual, func(st Store) error {
		if to == stFailed {
			return nil // finish stores the end with its reason
		}
		return st.Transition(ctx, r.ID, r.State, to, msg, RunUpdate{})
	})
	if err != nil {
		return err
	}
	if to == stFailed {
		return end(stFailed, "attempt %d %s", att.Number, why)
	}
	e.published(ctx, r, to, msg)
	return nil
}

func describeExit(x *executorv1.ExecutionResult) string {
	var s string
	switch x.GetTerminationReason() {
	case executorv1.TerminationReason_TERMINATION_REASON_EXITED:
		s = fmt.Sprintf("exited with code %d", x.GetExitCode())
	case executorv1.TerminationReason_TERMINATION_REASON_TIMEOUT:
		s = "ran out of time"
	case executorv1.TerminationReason_TERMINATION_REASON_CPU_LIMIT:
		s = "used up its CPU time"
	case executorv1.TerminationReason_TERMINATION_REASON_MEMORY_LIMIT:
		s = "ran out of memory"
	case executorv1.TerminationReason_TERMINATION_REASON_OUTPUT_LIMIT:
		s = "wrote too much output"
	default:
		s = "was killed"
	}
	if msg := strings.TrimSpace(x.GetMessage()); msg != "" {
		s += " (" + msg + ")"
	}
	if errTail := strings.TrimSpace(tail(string(x.GetStderr()), 300)); errTail != "" {
		lines := strings.Split(errTail, "\n")
		s += ": " + lines[len(lines)-1]
	}
	return s
}

// execute runs the code through ExecuteStream, relaying output to watchers.
func (e *Engine) execute(ctx context.Context, r *Run, req *executorv1.ExecuteRequest) (*executorv1.ExecutionResult, error) {
	stream, err := e.clients.Executor.ExecuteStream(asService(ctx), &executorv1.ExecuteStreamRequest{Request: req})
	if err != nil {
		return nil, err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Internal, "the executor ended the stream without a result")
		}
		if err != nil {
			return nil, err
		}
		if c := msg.GetChunk(); c != nil {
			e.hub.publish(r.ID, Event{Output: c})
		}
		if res := msg.GetResult(); res != nil {
			return res, nil
		}
	}
}

// saveOutput stores one output file with the run.
func (e *Engine) saveOutput(ctx context.Context, st Store, r *Run, f *executorv1.OutputFile) error {
	ctx = context.WithoutCancel(ctx)
	file := &File{FileRef: FileRef{ID: newID("file"), Name: f.GetName()}, Tenant: r.Tenant, Owner: r.Requester,
		RunID: r.ID, Kind: FileOutput}
	_, err := storeContent(ctx, st, e.cfg.ChunkBytes, file, bytes.NewReader(f.GetContent()))
	return err
}

// storeContent stores a whole file from rd in chunks and completes it.
func storeContent(ctx context.Context, st Store, chunkBytes int, f *File, rd io.Reader) (FileRef, error) {
	if err := st.CreateFile(ctx, f); err != nil {
		return FileRef{}, err
	}
	h := sha256.New()
	buf := make([]byte, chunkBytes)
	var size int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(rd, buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if err := st.AppendChunk(ctx, f.ID, seq, buf[:n]); err != nil {
				_ = st.DeleteFile(ctx, f.ID)
				return FileRef{}, err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			_ = st.DeleteFile(ctx, f.ID)
			return FileRef{}, err
		}
	}
	f.Size, f.SHA256 = size, hex.EncodeToString(h.Sum(nil))
	if err := st.CompleteFile(ctx, f.ID, f.Size, f.SHA256); err != nil {
		return FileRef{}, err
	}
	return f.FileRef, nil
}
