package orchestrator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// asService drops the forwarded end user from ctx: the generator and the
// executor hold no tenant state and serve only services, so the orchestrator
// calls them as itself (the run id travels in the request for their logs).
func asService(ctx context.Context) context.Context {
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		return ctx
	}
	md = md.Copy()
	md.Delete(auth.ForwardedPrincipalHeader)
	return metadata.NewOutgoingContext(ctx, md)
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (e *Engine) stepReceived(ctx context.Context, r *Run) error {
	if r.SuppliedCode != "" {
		att := &Attempt{Number: 1, Status: AttemptChecking, Code: r.SuppliedCode, CodeSHA256: sha256Hex(r.SuppliedCode)}
		return e.atomically(ctx, r, func(st Store) error { return st.PutAttempt(ctx, r.ID, att) },
			stChecking, "checking the supplied code against the policy", RunUpdate{})
	}
	return e.transition(ctx, r, stGenerate, "generating code (attempt 1)", RunUpdate{})
}

// feedback describes why the previous attempt failed, for the next one.
func feedback(prev *Attempt) *generatorv1.Feedback {
	if prev == nil {
		return nil
	}
	fb := &generatorv1.Feedback{PreviousCode: prev.Code}
	if prev.Check.GetVerdict() == policyv1.Verdict_VERDICT_DENY {
		fb.Findings = prev.Check.GetFindings()
	}
	if x := prev.Execution; x != nil {
		fb.ExecutionError = fmt.Sprintf("%s (exit code %d): %s\n%s", x.GetTerminationReason(), x.GetExitCode(),
			x.GetMessage(), tail(string(x.GetStderr()), 4000))
	}
	return fb
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func (e *Engine) readInputs(ctx context.Context, r *Run) ([]*executorv1.InputFile, error) {
	var out []*executorv1.InputFile
	for _, in := range r.Inputs {
		var buf bytes.Buffer
		if err := e.store.ReadChunks(ctx, in.ID, func(b []byte) error { buf.Write(b); return nil }); err != nil {
			return nil, fmt.Errorf("reading input %s: %w", in.Name, err)
		}
		if int64(buf.Len()) != in.Size {
			return nil, fmt.Errorf("input %s: stored %d bytes, expected %d", in.Name, buf.Len(), in.Size)
		}
		out = append(out, &executorv1.InputFile{Name: in.Name, Content: buf.Bytes()})
	}
	return out, nil
}

func (e *Engine) profiles(ctx context.Context, r *Run) ([]*generatorv1.DatasetProfile, error) {
	inputs, err := e.readInputs(ctx, r)
	if err != nil {
		return nil, err
	}
	var out []*generatorv1.DatasetProfile
	for _, in := range inputs {
		p := &generatorv1.DatasetProfile{Name: in.GetName(), SizeBytes: int64(len(in.GetContent()))}
		if e.profile != nil {
			prof, err := e.profile(ctx, in.GetName(), in.GetContent())
			if err != nil {
				return nil, end(stFailed, "input %s cannot be read as a dataset: %v", in.GetName(), err)
			}
			p = prof
		}
		out = append(out, p)
	}
	return out, nil
}

func (e *Engine) stepGenerate(ctx context.Context, r *Run) error {
	if last := r.LastAttempt(); last != nil && last.Status == AttemptChecking && last.Code != "" {
		// The process stopped after storing the generated code and before
		// the run moved on: finish settling it rather than pay for new code.
		res, ok, err := e.settling(ctx, r, kindLLM)
		if err != nil {
			return err
		}
		return e.settleGeneration(ctx, r, last, res, ok)
	}
	n := len(r.Attempts) + 1
	var prev *Attempt
	if last := r.LastAttempt(); last != nil && last.Status == AttemptGenerating {
		n = last.Number // resumed: the interrupted attempt starts over
		if len(r.Attempts) > 1 {
			prev = &r.Attempts[len(r.Attempts)-2]
		}
	} else {
		prev = last
	}
	att := &Attempt{Number: n, Status: AttemptGenerating}
	if err := e.store.PutAttempt(ctx, r.ID, att); err != nil {
		return err
	}
	profiles, err := e.profiles(ctx, r)
	if err != nil {
		return err
	}
	// The prompt is priced from its length (about 3 characters a token, plus the
	// generator's instructions); the answer at its cap.
	size := len(r.Prompt) + 4000
	for _, p := range profiles {
		size += len(p.String())
	}
	if fb := feedback(prev); fb != nil {
		size += len(fb.String())
	}
	estimate, err := e.prices.LLM(e.cfg.Model, int64(size/3+1), 0, int64(e.cfg.MaxOutputTokens))
	if err != nil {
		return end(stFailed, "pricing model %s: %v", e.cfg.Model, err)
	}
	res, err := e.reserve(ctx, r, kindLLM, estimate, e.cfg.GenerateTimeout+5*time.Minute, e.cfg.Model, nil)
	if err != nil {
		return err
	}
	gctx, cancel := context.WithTimeout(ctx, e.cfg.GenerateTimeout)
	resp, err := e.clients.Generator.Generate(asService(gctx), &generatorv1.GenerateRequest{
		Prompt:          r.Prompt,
		Datasets:        profiles,
		AllowedImports:  e.allowedImports(ctx, r),
		Feedback:        feedback(prev),
		Model:           e.cfg.Model,
		MaxOutputTokens: e.cfg.MaxOutputTokens,
	})
	cancel()
	if err != nil {
		if spent := spentOnFailedGeneration(err); spent > 0 {
			// The model answered and its tokens were billed, though the answer
			// was unusable: settle what was spent rather than release it.
			att.GenerationMicros = spent
			if cerr := e.commit(ctx, r, res, spent, func(st Store) error { return st.PutAttempt(ctx, r.ID, att) }); cerr != nil {
				e.log.WarnContext(ctx, "settling a failed generation", "run_id", r.ID, "error", cerr)
				e.release(ctx, r, res, "generation failed")
			}
		} else {
			e.release(ctx, r, res, "generation failed")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return end(stFailed, "generating code (attempt %d): %s", n, status.Convert(err).Message())
	}
	cost := resp.GetCostMicros()
	if cost == 0 && resp.GetUsage() != nil {
		u := resp.GetUsage()
		if c, err := e.prices.LLM(e.cfg.Model, u.GetPromptTokens(), u.GetCachedPromptTokens(), u.GetCompletionTokens()); err == nil {
			cost = c
		}
	}
	code := resp.GetCode()
	if strings.TrimSpace(code) == "" {
		if err := e.commit(ctx, r, res, cost, nil); err != nil {
			return err
		}
		return end(stFailed, "the model returned no code (attempt %d)", n)
	}
	att.Status = AttemptChecking
	att.Code = code
	att.CodeSHA256 = sha256Hex(code)
	att.Explanation = resp.GetExplanation()
	att.GenerationMicros = cost
	// The code and what to charge are stored before the budget is charged: a
	// process that stops after the charge moves the run on from them when it
	// starts again, rather than paying for the code twice.
	err = e.store.InTx(context.WithoutCancel(ctx), func(st Store) error {
		if err := st.PutAttempt(ctx, r.ID, att); err != nil {
			return err
		}
		return st.SettleReservation(ctx, res.ID, cost)
	})
	if err != nil {
		return err
	}
	res.Settling, res.Actual = true, cost
	return e.settleGeneration(ctx, r, att, res, true)
}

// settleGeneration charges a generated attempt's stored cost to the budget
// (when its reservation is still held) and moves the run to CHECKING, in one
// transaction with the run's cost.
func (e *Engine) settleGeneration(ctx context.Context, r *Run, att *Attempt, res Reservation, held bool) error {
	msg := fmt.Sprintf("checking attempt %d against the policy", att.Number)
	move := func(st Store) error { return st.Transition(ctx, r.ID, r.State, stChecking, msg, RunUpdate{}) }
	var err error
	if held {
		err = e.commit(ctx, r, res, res.Actual, move)
	} else {
		err = move(e.store)
	}
	if err != nil {
		return err
	}
	e.published(ctx, r, stChecking, msg)
	return nil
}

// allowedImports asks the policy for its allow-list, so the model writes code
// the policy accepts. A failure here only loses the hint.
func (e *Engine) allowedImports(ctx context.Context, r *Run) []string {
	resp, err := e.clients.Policy.GetPolicy(ctx, &policyv1.GetPolicyRequest{PolicyId: r.PolicyID})
	if err != nil {
		e.log.DebugContext(ctx, "reading policy for its allow-list", "run_id", r.ID, "error", err)
		return nil
	}
	return resp.GetPolicy().GetAllowedImports()
}

func findingsSummary(fs []*policyv1.Finding) string {
	var parts []string
	for i, f := range fs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("line %d: %s (%s)", f.GetLine(), f.GetMessage(), f.GetRuleId()))
	}
	return strings.Join(parts, "; ")
}

func (e *Engine) stepCheck(ctx context.Context, r *Run) error {
	att := r.LastAttempt()
	if att == nil || att.Code == "" {
		return end(stFailed, "no code to check")
	}
	resp, err := e.clients.Policy.Check(ctx, &policyv1.CheckRequest{Code: att.Code, PolicyId: r.PolicyID})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return end(stFailed, "checking attempt %d against the policy: %s", att.Number, status.Convert(err).Message())
	}
	if h := resp.GetCodeSha256(); h != "" && h != att.CodeSHA256 {
		return end(stFailed, "the policy judged code with hash %s, not the attempt's %s", h, att.CodeSHA256)
	}
	att.Check = resp
	att.Status = AttemptChecked
	save := func(st Store) error { return st.PutAttempt(ctx, r.ID, att) }
	switch resp.GetVerdict() {
	case policyv1.Verdict_VERDICT_ALLOW:
		return e.atomically(ctx, r, save, stExecuting, fmt.Sprintf("policy %s allows attempt %d; executing", resp.GetPolicyId(), att.Number), RunUpdate{})
	case policyv1.Verdict_VERDICT_REVIEW:
		ap, err := e.findOrCreateApproval(ctx, r, att)
		if err != nil {
			return err
		}
		id := ap.GetId()
		return e.atomically(ctx, r, save, stAwaiting, fmt.Sprintf("policy %s asks for review (%s); waiting for approval %s",
			resp.GetPolicyId(), findingsSummary(resp.GetFindings()), id), RunUpdate{ApprovalID: &id})
	case policyv1.Verdict_VERDICT_DENY:
		if r.Prompt != "" && att.Number < r.MaxAttempts {
			return e.atomically(ctx, r, save, stGenerate, fmt.Sprintf("policy denied attempt %d (%s); generating attempt %d with the findings",
				att.Number, findingsSummary(resp.GetFindings()), att.Number+1), RunUpdate{})
		}
		if err := e.store.PutAttempt(ctx, r.ID, att); err != nil {
			return err
		}
		return end(stDenied, "policy %s denied attempt %d: %s", resp.GetPolicyId(), att.Number, findingsSummary(resp.GetFindings()))
	}
	if err := e.store.PutAttempt(ctx, r.ID, att); err != nil {
		return err
	}
	return end(stFailed, "the policy returned verdict %s", resp.GetVerdict())
}

// findOrCreateApproval returns the pending or decided approval of this run for
// this exact code, creating one if none exists (a restart may have created it already).
func (e *Engine) findOrCreateApproval(ctx context.Context, r *Run, att *Attempt) (*approvalv1.Approval, error) {
	list, err := e.clients.Approval.ListApprovals(ctx, &approvalv1.ListApprovalsRequest{RunId: r.ID, PageSize: 100})
	if err == nil {
		for _, a := range list.GetApprovals() {
			if a.GetCodeSha256() == att.CodeSHA256 && a.GetPolicyVersion() == att.Check.GetPolicyVersion() {
				return a, nil
			}
		}
	} else if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var inputs []*approvalv1.InputSummary
	for _, in := range r.Inputs {
		inputs = append(inputs, &approvalv1.InputSummary{Name: in.Name, SizeBytes: in.Size})
	}
	req := &approvalv1.CreateApprovalRequest{
		RunId: r.ID, Code: att.Code, PolicyId: att.Check.GetPolicyId(), PolicyVersion: att.Check.GetPolicyVersion(),
		Findings: att.Check.GetFindings(), Inputs: inputs,
	}
	if e.cfg.ApprovalTTL > 0 {
		req.Ttl = durationpb.New(e.cfg.ApprovalTTL)
	}
	resp, err := e.clients.Approval.CreateApproval(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, end(stFailed, "opening the approval request: %s", status.Convert(err).Message())
	}
	return resp.GetApproval(), nil
}

func (e *Engine) stepAwait(ctx context.Context, r *Run) error {
	att := r.LastAttempt()
	if att == nil || att.Check == nil {
		return end(stFailed, "waiting for approval without checked code")
	}
	if r.ApprovalID == "" {
		ap, err := e.findOrCreateApproval(ctx, r, att)
		if err != nil {
			return err
		}
		if err := e.store.SetApprovalID(ctx, r.ID, ap.GetId()); err != nil {
			return err
		}
		r.ApprovalID = ap.GetId()
		e.hub.publish(r.ID, Event{Changed: true})
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	changed := make(chan struct{}, 1)
	go e.watchApproval(wctx, r.ApprovalID, changed)
	poll := time.NewTicker(e.cfg.ApprovalPoll)
	defer poll.Stop()
	for {
		resp, err := e.clients.Approval.GetApproval(ctx, &approvalv1.GetApprovalRequest{ApprovalId: r.ApprovalID})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if status.Code(err) == codes.NotFound {
				return end(stFailed, "approval %s no longer exists", r.ApprovalID)
			}
			e.log.WarnContext(ctx, "reading approval", "run_id", r.ID, "approval_id", r.ApprovalID, "error", err)
		} else {
			ap := resp.GetApproval()
			switch ap.GetState() {
			case approvalv1.ApprovalState_APPROVAL_STATE_APPROVED:
				return e.transition(ctx, r, stExecuting, fmt.Sprintf("approved by %s; executing", ap.GetDecidedBy()), RunUpdate{})
			case approvalv1.ApprovalState_APPROVAL_STATE_REJECTED:
				return end(stRejected, "rejected by %s: %s", ap.GetDecidedBy(), ap.GetReason())
			case approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED:
				return end(stExpired, "approval %s expired undecided", ap.GetId())
			}
			if exp := ap.GetExpiresAt(); exp != nil && time.Now().After(exp.AsTime().Add(time.Minute)) {
				return end(stExpired, "approval %s expired undecided at %s", ap.GetId(), exp.AsTime().Format(time.RFC3339))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-poll.C:
		}
	}
}

// watchApproval signals changed whenever the approval service reports a change.
// Polling covers the time the stream is down.
func (e *Engine) watchApproval(ctx context.Context, id string, changed chan<- struct{}) {
	for ctx.Err() == nil {
		stream, err := e.clients.Approval.WatchApprovals(ctx, &approvalv1.WatchApprovalsRequest{ApprovalId: id})
		if err == nil {
			for {
				if _, err = stream.Recv(); err != nil {
					break
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.ApprovalPoll):
		}
	}
}

// generatorErrorDomain is the google.rpc.ErrorInfo domain the generator uses
// for failures that still cost money (a malformed answer).
const generatorErrorDomain = "generator.airlock"

// spentOnFailedGeneration returns the cost a failed Generate call reports in
// its ErrorInfo detail, or 0 when it reports none.
func spentOnFailedGeneration(err error) int64 {
	for _, d := range status.Convert(err).Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != generatorErrorDomain {
			continue
		}
		if v, perr := strconv.ParseInt(info.GetMetadata()["cost_micros"], 10, 64); perr == nil && v > 0 {
			return v
		}
	}
	return 0
}
