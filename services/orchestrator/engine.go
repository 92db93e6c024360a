package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/pricing"
)

// Run states, shorter.
const (
	stReceived  = orchestratorv1.RunState_RUN_STATE_RECEIVED
	stGenerate  = orchestratorv1.RunState_RUN_STATE_GENERATING
	stChecking  = orchestratorv1.RunState_RUN_STATE_CHECKING
	stAwaiting  = orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL
	stExecuting = orchestratorv1.RunState_RUN_STATE_EXECUTING
	stSucceeded = orchestratorv1.RunState_RUN_STATE_SUCCEEDED
	stFailed    = orchestratorv1.RunState_RUN_STATE_FAILED
	stDenied    = orchestratorv1.RunState_RUN_STATE_DENIED
	stRejected  = orchestratorv1.RunState_RUN_STATE_REJECTED
	stBudget    = orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED
	stCancelled = orchestratorv1.RunState_RUN_STATE_CANCELLED
	stExpired   = orchestratorv1.RunState_RUN_STATE_EXPIRED
)

// Clients are the services a run calls, as their generated gRPC clients.
type Clients struct {
	Policy    policyv1.PolicyServiceClient
	Budget    budgetv1.BudgetServiceClient
	Generator generatorv1.GeneratorServiceClient
	Executor  executorv1.ExecutorServiceClient
	Approval  approvalv1.ApprovalServiceClient
}

// Profiler describes an input file for the model without its contents.
type Profiler func(ctx context.Context, name string, content []byte) (*generatorv1.DatasetProfile, error)

// Config holds the orchestrator's settings.
type Config struct {
	// MaxAttempts is the default and the ceiling of attempts per run.
	MaxAttempts int
	// Model is the model asked for code; it is also the model priced.
	Model string
	// MaxOutputTokens caps each answer; the reservation prices it in full.
	MaxOutputTokens int32
	// GenerateTimeout bounds one generation.
	GenerateTimeout time.Duration
	// ApprovalPoll is how often a waiting run re-reads its approval.
	ApprovalPoll time.Duration
	// ApprovalTTL is the approval requests' expiry; 0 leaves the approval service's default.
	ApprovalTTL time.Duration
	// DefaultTimeout and DefaultMemoryBytes price executions whose policy sets no limit.
	DefaultTimeout     time.Duration
	DefaultMemoryBytes int64
	// MaxFileBytes caps one uploaded file; MaxRunInputBytes all inputs of a run.
	MaxFileBytes     int64
	MaxRunInputBytes int64
	// MaxOutputBytes caps the output files of one execution, whatever the
	// policy allows: they come back in one gRPC message and are stored with
	// the run. Policy limits above it are lowered to it.
	MaxOutputBytes int64
	// ChunkBytes is the size of stored and streamed file chunks.
	ChunkBytes int
	// LeaseTTL is how long a run stays with the engine driving it without a
	// renewal; another engine (a replica, or this one restarted after a crash)
	// takes it over after that. Renewals come every LeaseTTL/3.
	LeaseTTL time.Duration
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{
		MaxAttempts:        3,
		Model:              "grok-code-fast-1",
		MaxOutputTokens:    4096,
		GenerateTimeout:    3 * time.Minute,
		ApprovalPoll:       2 * time.Second,
		DefaultTimeout:     30 * time.Second,
		DefaultMemoryBytes: 512 << 20,
		MaxFileBytes:       32 << 20,
		MaxRunInputBytes:   48 << 20,
		MaxOutputBytes:     40 << 20,
		ChunkBytes:         256 << 10,
		LeaseTTL:           30 * time.Second,
	}
}

// Engine drives runs. One Engine owns the runs of its store: on Start it
// resumes every run that had not ended (see Recover for what that means per state).
type Engine struct {
	store   Store
	clients Clients
	prices  *pricing.Table
	cfg     Config
	log     *slog.Logger
	profile Profiler
	hub     *hub

	// ready closes once the services the engine calls answer; runs wait for it.
	ready chan struct{}
	// id names this engine as the owner of the runs it drives.
	id string

	mu      sync.Mutex
	base    context.Context
	running map[string]context.CancelCauseFunc
	wg      sync.WaitGroup
}

// errUserCancel is the cause of a run's context when its owner cancels it.
var errUserCancel = errors.New("cancelled by request")

// NewEngine returns an engine; call Start before submitting.
func NewEngine(store Store, clients Clients, prices *pricing.Table, cfg Config, profile Profiler, log *slog.Logger) *Engine {
	return &Engine{store: store, clients: clients, prices: prices, cfg: cfg, log: log, profile: profile,
		hub: newHub(), running: map[string]context.CancelCauseFunc{}, ready: make(chan struct{}), id: newID("orch")}
}

// Start lets the engine take runs under ctx and, once ready returns nil,
// resumes every unfinished run no other engine holds. When ctx ends, runs
// stop where they are and their leases are released, to be resumed by the
// next Start (or another replica). While it runs, the engine renews the
// leases of its runs every LeaseTTL/3 and takes over runs whose lease lapsed.
//
// What resuming means per state: RECEIVED, CHECKING and AWAITING_APPROVAL
// carry on (an approval request already opened is found again, not
// duplicated); GENERATING releases the interrupted call's reservation and
// generates that attempt again; EXECUTING carries on only when the attempt was
// not yet recorded as started, and otherwise ends FAILED without running the
// code again.
func (e *Engine) Start(ctx context.Context, ready func(context.Context) error) {
	e.mu.Lock()
	e.base = ctx
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if ready != nil {
			if err := ready(ctx); err != nil {
				return
			}
		}
		close(e.ready)
		if n, err := e.store.DeleteIncompleteFiles(ctx, time.Now().Add(-time.Hour)); err != nil {
			e.log.WarnContext(ctx, "removing abandoned uploads", "error", err)
		} else if n > 0 {
			e.log.InfoContext(ctx, "removed abandoned uploads", "files", n)
		}
		tick := time.NewTicker(e.cfg.LeaseTTL / 3)
		defer tick.Stop()
		for {
			if err := e.Recover(ctx); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "resuming runs", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			e.renewLeases(ctx)
		}
	}()
}

// errLostLease stops a run whose lease another engine took over.
var errLostLease = errors.New("another orchestrator took the run over")

// renewLeases extends the lease of every run this engine drives; a run
// another engine took over is stopped here.
func (e *Engine) renewLeases(ctx context.Context) {
	e.mu.Lock()
	ids := make(map[string]context.CancelCauseFunc, len(e.running))
	for id, c := range e.running {
		ids[id] = c
	}
	e.mu.Unlock()
	until := time.Now().Add(e.cfg.LeaseTTL)
	for id, cancel := range ids {
		err := e.store.RenewLease(ctx, id, e.id, until)
		if errors.Is(err, ErrConflict) {
			e.log.WarnContext(ctx, "stopping a run another orchestrator took over", "run_id", id)
			cancel(errLostLease)
			continue
		} else if err != nil {
			if ctx.Err() == nil {
				e.log.WarnContext(ctx, "renewing a run's lease", "run_id", id, "error", err)
			}
			continue
		}
		// A cancellation asked of another replica reaches the owner here.
		if yes, reason, err := e.store.CancelRequested(ctx, id); err == nil && yes {
			cancel(fmt.Errorf("%w: %s", errUserCancel, cancelMessage(reason)))
		}
	}
}

// cancelMessage is the failure reason of a run cancelled with the stored
// reason (empty for requests stored before reasons were kept).
func cancelMessage(reason string) string {
	if reason == "" {
		return "cancelled by request"
	}
	return reason
}

// Recover claims and resumes every unfinished run that no engine holds.
func (e *Engine) Recover(ctx context.Context) error {
	runs, err := e.store.ActiveRuns(ctx)
	if err != nil {
		return fmt.Errorf("finding runs to resume: %w", err)
	}
	for _, r := range runs {
		e.mu.Lock()
		_, mine := e.running[r.ID]
		e.mu.Unlock()
		if mine {
			continue
		}
		now := time.Now()
		ok, err := e.store.ClaimRun(ctx, r.ID, e.id, now.Add(e.cfg.LeaseTTL), now)
		if err != nil {
			return err
		}
		if !ok {
			continue // another engine drives it
		}
		e.log.InfoContext(ctx, "resuming run", "run_id", r.ID, "state", r.State.String(), "previous_owner", r.Owner)
		e.launch(r.ID, r.Tenant, true)
	}
	return nil
}

// Wait blocks until every run goroutine has returned (after the Start context ends).
func (e *Engine) Wait() { e.wg.Wait() }

func (e *Engine) launch(id, tenant string, recovered bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.base == nil || e.base.Err() != nil {
		return
	}
	if _, ok := e.running[id]; ok {
		return
	}
	ctx, cancel := context.WithCancelCause(e.base)
	e.running[id] = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.running, id)
			e.mu.Unlock()
			cancel(nil)
			if e.base.Err() != nil { // stopping: let the next engine take the run at once
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(e.base), 5*time.Second)
				_ = e.store.ReleaseLease(rctx, id, e.id)
				rcancel()
			}
		}()
		e.drive(ctx, id, tenant, recovered)
	}()
}

// Visible reports whether p may see r: its requester always, an operator
// (or admin, or a service) anything of the tenant.
func Visible(p auth.Principal, tenant, owner string) bool {
	if p.Tenant != tenant {
		return false
	}
	return owner == p.Subject || p.HasAny(auth.RoleOperator, auth.RoleService)
}

// Get returns a run p may see.
func (e *Engine) Get(ctx context.Context, p auth.Principal, id string) (*Run, error) {
	r, err := e.store.GetRun(ctx, p.Tenant, id)
	if err != nil {
		return nil, err
	}
	if !Visible(p, r.Tenant, r.Requester) {
		return nil, ErrNotFound
	}
	return r, nil
}

// List returns a page of the runs p may see.
func (e *Engine) List(ctx context.Context, p auth.Principal, lp ListParams) ([]*Run, error) {
	lp.Tenant = p.Tenant
	if !p.HasAny(auth.RoleOperator, auth.RoleService) {
		if lp.Requester != "" && lp.Requester != p.Subject {
			return nil, nil
		}
		lp.Requester = p.Subject
	}
	return e.store.ListRuns(ctx, lp)
}

// Cancel stops a run p may see and returns it once it has ended (or after a
// few seconds, if the run's current step is slow to stop).
func (e *Engine) Cancel(ctx context.Context, p auth.Principal, id, reason string) (*Run, error) {
	r, err := e.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if Terminal(r.State) {
		return r, ErrFinished
	}
	msg := "cancelled by " + p.Subject
	if reason != "" {
		msg += ": " + reason
	}
	if err := e.store.RequestCancel(ctx, r.Tenant, id, msg); err != nil {
		return nil, err
	}
	e.mu.Lock()
	cancel, running := e.running[id]
	e.mu.Unlock()
	if running {
		cancel(fmt.Errorf("%w: %s", errUserCancel, msg))
	} else {
		// Driven by no one (a crashed replica's lapsed lease): end it here.
		// Otherwise its owner sees the request when it next renews its lease.
		now := time.Now()
		if ok, err := e.store.ClaimRun(ctx, id, e.id, now.Add(e.cfg.LeaseTTL), now); err != nil {
			return nil, err
		} else if ok {
			e.finish(ctx, r, stCancelled, msg)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err = e.store.GetRun(ctx, p.Tenant, id)
		if err != nil || Terminal(r.State) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r, nil
}

// Subscribe returns the in-process events of a run and a function that ends the subscription.
func (e *Engine) Subscribe(runID string) (<-chan Event, func()) { return e.hub.subscribe(runID) }

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// transition stores a state change and tells watchers.
func (e *Engine) transition(ctx context.Context, r *Run, to State, msg string, upd RunUpdate) error {
	return e.atomically(ctx, r, nil, to, msg, upd)
}

// atomically stores fn's writes and r's change to state to in one
// transaction, then tells watchers (only once it is committed).
func (e *Engine) atomically(ctx context.Context, r *Run, fn func(Store) error, to State, msg string, upd RunUpdate) error {
	err := e.store.InTx(ctx, func(st Store) error {
		if fn != nil {
			if err := fn(st); err != nil {
				return err
			}
		}
		return st.Transition(ctx, r.ID, r.State, to, msg, upd)
	})
	if err != nil {
		return err
	}
	e.published(ctx, r, to, msg)
	return nil
}

// published logs and tells watchers of a transition stored by a transaction of the caller's.
func (e *Engine) published(ctx context.Context, r *Run, to State, msg string) {
	e.log.InfoContext(ctx, "run transition", "run_id", r.ID, "from", r.State.String(), "to", to.String(), "message", msg)
	e.hub.publish(r.ID, Event{Transition: &Transition{From: r.State, To: to, Message: msg, At: time.Now().UTC()}})
	r.State = to
}

// finish ends a run: it releases every reservation the run still holds, then
// stores the final state. It works on a context of its own, so a cancelled
// run still cleans up.
func (e *Engine) finish(ctx context.Context, r *Run, to State, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	e.releaseAll(ctx, r)
	upd := RunUpdate{}
	if to != stSucceeded {
		upd.FailureReason = reason
	}
	for range 5 {
		err := e.transition(ctx, r, to, reason, upd)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrConflict) {
			e.log.ErrorContext(ctx, "storing the end of a run", "run_id", r.ID, "error", err)
			return
		}
		cur, gerr := e.store.GetRun(ctx, r.Tenant, r.ID)
		if gerr != nil || Terminal(cur.State) {
			return
		}
		r.State = cur.State
	}
}

// drive moves a run through its states until it ends or ctx ends.
func (e *Engine) drive(ctx context.Context, id, tenant string, recovered bool) {
	log := e.log.With("run_id", id)
	select { // a run submitted while the process starts waits for its peers
	case <-e.ready:
	case <-ctx.Done():
		return
	}
	for {
		r, err := e.store.GetRun(ctx, tenant, id)
		if err != nil {
			if ctx.Err() == nil {
				log.ErrorContext(ctx, "reading run", "error", err)
			}
			return
		}
		if Terminal(r.State) {
			return
		}
		if r.CancelRequested {
			e.finish(ctx, r, stCancelled, cancelMessage(r.CancelReason))
			return
		}
		err = e.step(ctx, r, recovered)
		recovered = false
		if err == nil {
			continue
		}
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			if errors.Is(cause, errUserCancel) {
				e.markInterrupted(ctx, r)
				e.finish(ctx, r, stCancelled, strings.TrimPrefix(cause.Error(), errUserCancel.Error()+": "))
			}
			// Otherwise the process is stopping: leave the run where it is for the next start.
			return
		}
		var end *endError
		if errors.As(err, &end) {
			e.finish(ctx, r, end.state, end.reason)
			return
		}
		if errors.Is(err, errLostLease) {
			log.WarnContext(ctx, "stopping: another orchestrator took the run over")
			return
		}
		if errors.Is(err, ErrConflict) {
			continue // cancelled or changed under us: re-read
		}
		log.WarnContext(ctx, "run failed", "state", r.State.String(), "error", err)
		e.finish(ctx, r, stFailed, err.Error())
		return
	}
}

// markInterrupted records that a cancelled attempt's execution was stopped.
func (e *Engine) markInterrupted(ctx context.Context, r *Run) {
	a := r.LastAttempt()
	if a == nil || a.Status != AttemptExecuting {
		return
	}
	a.Status = AttemptExecuted
	if a.Execution == nil {
		a.Execution = &executorv1.ExecutionResult{
			TerminationReason: executorv1.TerminationReason_TERMINATION_REASON_KILLED,
			Message:           "stopped: the run was cancelled",
		}
	}
	if err := e.store.PutAttempt(context.WithoutCancel(ctx), r.ID, a); err != nil {
		e.log.WarnContext(ctx, "recording interrupted execution", "run_id", r.ID, "error", err)
	}
}

// endError ends a run in a given state with a reason.
type endError struct {
	state  State
	reason string
}

func (e *endError) Error() string { return e.state.String() + ": " + e.reason }

func end(state State, format string, args ...any) error {
	return &endError{state: state, reason: fmt.Sprintf(format, args...)}
}

// step performs the work of r's current state and stores the next state.
func (e *Engine) step(ctx context.Context, r *Run, recovered bool) error {
	uctx := auth.OnBehalfOf(ctx, r.Principal)
	switch r.State {
	case stReceived:
		return e.stepReceived(ctx, r)
	case stGenerate:
		if recovered {
			// The interrupted call's money (generation starts over), but not
			// that of code already generated, which stepGenerate settles.
			e.releaseUnused(ctx, r, true)
		}
		return e.stepGenerate(uctx, r)
	case stChecking:
		return e.stepCheck(uctx, r)
	case stAwaiting:
		return e.stepAwait(uctx, r)
	case stExecuting:
		if recovered {
			// A finished execution's reservation is settled by stepExecute.
			e.releaseUnused(ctx, r, true)
		}
		return e.stepExecute(uctx, r)
	}
	return fmt.Errorf("run is in unexpected state %s", r.State)
}
