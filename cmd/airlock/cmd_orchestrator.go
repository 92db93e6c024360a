package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/services/orchestrator"
)

// Exit codes of `airlock run` and `airlock runs watch` by how the run ended:
// 0 only for SUCCEEDED.
var runExitCodes = map[orchestratorv1.RunState]int{
	orchestratorv1.RunState_RUN_STATE_FAILED:          1,
	orchestratorv1.RunState_RUN_STATE_DENIED:          2,
	orchestratorv1.RunState_RUN_STATE_REJECTED:        3,
	orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED: 4,
	orchestratorv1.RunState_RUN_STATE_CANCELLED:       5,
	orchestratorv1.RunState_RUN_STATE_EXPIRED:         6,
}

func orchestratorClient(cmd *cobra.Command) (orchestratorv1.OrchestratorServiceClient, error) {
	conn, err := dialClient(cmd)
	if err != nil {
		return nil, err
	}
	return orchestratorv1.NewOrchestratorServiceClient(conn), nil
}

// newRunCmd is `airlock run`: a whole run through the server, from files and
// a prompt or code to output files, with live progress.
func newRunCmd() *cobra.Command {
	var promptText, codeFile, outDir, policyID string
	var inputs []string
	var maxAttempts int
	cmd := &cobra.Command{
		Use:   "run (--prompt TEXT | --code FILE.py) [--input FILE]... [--out DIR]",
		Short: "Run a job: generate or take code, check it, pay for it, get it approved if needed, run it, fetch its outputs",
		Long: `Run a job through the server (AIRLOCK_ADDR, AIRLOCK_TOKEN).

Inputs are uploaded and mounted read-only at /data/in/<name>; files the code
writes under /data/out are saved in --out. Progress is shown as the run moves
through its stages. The exit code is 0 only when the run SUCCEEDED; otherwise
1 FAILED, 2 DENIED, 3 REJECTED, 4 BUDGET_EXCEEDED, 5 CANCELLED, 6 EXPIRED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (promptText == "") == (codeFile == "") {
				return errors.New("give exactly one of --prompt TEXT or --code FILE.py")
			}
			req := &orchestratorv1.SubmitRunRequest{PolicyId: policyID, MaxAttempts: int32(maxAttempts)}
			if codeFile != "" {
				b, err := os.ReadFile(codeFile)
				if err != nil {
					return fmt.Errorf("--code: %w", err)
				}
				req.Source = &orchestratorv1.SubmitRunRequest_Code{Code: string(b)}
			} else {
				req.Source = &orchestratorv1.SubmitRunRequest_Prompt{Prompt: promptText}
			}
			c, err := orchestratorClient(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			for _, path := range inputs {
				ref, err := uploadFile(ctx, c, path)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "uploaded %s (%s, sha256 %s…) as %s\n", ref.GetName(), humanBytes(ref.GetSizeBytes()), ref.GetSha256()[:12], ref.GetFileId())
				req.InputFileIds = append(req.InputFileIds, ref.GetFileId())
			}
			resp, err := c.SubmitRun(ctx, req)
			if err != nil {
				return fmt.Errorf("submitting the run: %w", err)
			}
			run := resp.GetRun()
			fmt.Fprintf(w, "run %s submitted by %s/%s\n", run.GetId(), run.GetTenant(), run.GetRequester())
			final, err := followRun(ctx, c, w, run.GetId())
			if err != nil {
				return err
			}
			if outDir == "" {
				outDir = filepath.Join("airlock-out", run.GetId())
			}
			written, err := downloadOutputs(ctx, c, final, outDir)
			printRunSummary(w, final, written)
			if err != nil {
				return err
			}
			return runExit(final)
		},
	}
	cmd.Flags().StringVar(&promptText, "prompt", "", "what to compute, in plain words; the model writes the code")
	cmd.Flags().StringVar(&codeFile, "code", "", "Python file to run instead of generating code")
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "input file (CSV or XLSX), mounted at /data/in/<name>; repeat for more")
	cmd.Flags().StringVar(&outDir, "out", "", "directory for the output files (default airlock-out/RUN_ID)")
	cmd.Flags().StringVar(&policyID, "policy", "", "policy to check the code against (default: the tenant's)")
	cmd.Flags().IntVar(&maxAttempts, "max-attempts", 0, "generation attempts (default: the server's)")
	return cmd
}

func runExit(r *orchestratorv1.Run) error {
	if r.GetState() == orchestratorv1.RunState_RUN_STATE_SUCCEEDED {
		return nil
	}
	code, ok := runExitCodes[r.GetState()]
	if !ok {
		code = 1
	}
	return &exitError{code: code}
}

// uploadFile streams a local file to the server in 256 KiB chunks.
func uploadFile(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, path string) (*orchestratorv1.FileRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--input: %w", err)
	}
	defer f.Close()
	stream, err := c.UploadFile(ctx)
	if err != nil {
		return nil, fmt.Errorf("uploading %s: %w", path, err)
	}
	if err := stream.Send(&orchestratorv1.UploadFileRequest{Name: filepath.Base(path)}); err != nil {
		_, err = stream.CloseAndRecv()
		return nil, fmt.Errorf("uploading %s: %w", path, err)
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if err := stream.Send(&orchestratorv1.UploadFileRequest{Chunk: buf[:n]}); err != nil {
				break // the server ended the stream; CloseAndRecv says why
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("reading %s: %w", path, rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("uploading %s: %s", path, status.Convert(err).Message())
	}
	return resp.GetFile(), nil
}

// followRun prints a run's progress until it ends and returns it. A broken
// stream (a server restart) is resumed; the run lives on the server.
func followRun(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, w io.Writer, id string) (*orchestratorv1.Run, error) {
	p := &progress{w: w}
	var last *orchestratorv1.Run
	for attempt := 0; ; attempt++ {
		stream, err := c.WatchRun(ctx, &orchestratorv1.WatchRunRequest{RunId: id})
		if err == nil {
			for {
				msg, rerr := stream.Recv()
				if rerr != nil {
					err = rerr
					break
				}
				if msg.GetRun() != nil {
					last = msg.GetRun()
				}
				p.show(msg)
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stopped following run %s; it goes on: `airlock runs watch %s`", id, id)
		}
		if last != nil && orchestrator.Terminal(last.GetState()) {
			resp, gerr := c.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: id})
			if gerr != nil {
				return last, nil
			}
			return resp.GetRun(), nil
		}
		if code := status.Code(err); code == codes.NotFound || code == codes.PermissionDenied || code == codes.Unauthenticated ||
			code == codes.InvalidArgument || attempt > 300 {
			return nil, fmt.Errorf("watching run %s: %s", id, status.Convert(err).Message())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// progress renders watch events for a person.
type progress struct {
	w            io.Writer
	seen         map[string]bool
	approvalShow string
	midLine      bool
}

func stateName(s orchestratorv1.RunState) string {
	return strings.TrimPrefix(s.String(), "RUN_STATE_")
}

func (p *progress) show(msg *orchestratorv1.WatchRunResponse) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if o := msg.GetOutput(); o != nil {
		prefix := "  │ "
		if o.GetStream() == executorv1.Stream_STREAM_STDERR {
			prefix = "  ! "
		}
		for _, line := range strings.SplitAfter(string(o.GetData()), "\n") {
			if line == "" {
				continue
			}
			if !p.midLine {
				fmt.Fprint(p.w, prefix)
			}
			fmt.Fprint(p.w, line)
			p.midLine = !strings.HasSuffix(line, "\n")
		}
		return
	}
	if p.midLine {
		fmt.Fprintln(p.w)
		p.midLine = false
	}
	if t := msg.GetTransition(); t != nil {
		key := t.GetAt().AsTime().String() + t.GetTo().String()
		if p.seen[key] {
			return
		}
		p.seen[key] = true
		at := t.GetAt().AsTime().Local().Format("15:04:05")
		fmt.Fprintf(p.w, "[%s] %-17s %s\n", at, stateName(t.GetTo()), t.GetMessage())
	}
	r := msg.GetRun()
	if r.GetState() == orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL && r.GetApprovalId() != "" && p.approvalShow != r.GetApprovalId() {
		p.approvalShow = r.GetApprovalId()
		fmt.Fprintf(p.w, `
  Waiting for approval %[1]s: the policy wants a person to review this code.
  An operator of tenant %[2]q other than %[3]s (a requester never approves their own run) must decide:
      airlock approvals show %[1]s
      airlock approvals approve %[1]s
      airlock approvals reject %[1]s --reason TEXT
  The run resumes by itself once approved.

`, r.GetApprovalId(), r.GetTenant(), r.GetRequester())
	}
}

// safeOutputPath maps an output name into dir, refusing names that would escape it.
func safeOutputPath(dir, name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if name == "" || filepath.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("refusing output file name %q", name)
	}
	return filepath.Join(dir, clean), nil
}

// downloadOutputs writes every output file of r under dir and returns the paths.
func downloadOutputs(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, r *orchestratorv1.Run, dir string) ([]string, error) {
	var written []string
	for _, f := range r.GetOutputs() {
		path, err := safeOutputPath(dir, f.GetName())
		if err != nil {
			return written, err
		}
		if err := downloadFile(ctx, c, f.GetFileId(), path); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

func downloadFile(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, id, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	stream, err := c.DownloadFile(ctx, &orchestratorv1.DownloadFileRequest{FileId: id})
	if err != nil {
		return fmt.Errorf("downloading %s: %w", id, err)
	}
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	defer os.Remove(tmp)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("downloading %s: %s", id, status.Convert(err).Message())
		}
		if _, err := f.Write(msg.GetChunk()); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func runDuration(r *orchestratorv1.Run) time.Duration {
	end := time.Now()
	if r.GetFinishedAt() != nil {
		end = r.GetFinishedAt().AsTime()
	}
	return end.Sub(r.GetCreatedAt().AsTime()).Round(time.Millisecond)
}

func printRunSummary(w io.Writer, r *orchestratorv1.Run, written []string) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", r.GetId())
	fmt.Fprintf(tw, "status\t%s\n", stateName(r.GetState()))
	if r.GetFailureReason() != "" && r.GetState() != orchestratorv1.RunState_RUN_STATE_SUCCEEDED {
		fmt.Fprintf(tw, "reason\t%s\n", r.GetFailureReason())
	}
	fmt.Fprintf(tw, "attempts\t%d\n", len(r.GetAttempts()))
	cost := r.GetCost()
	fmt.Fprintf(tw, "cost\t%s (model %s, compute %s)\n", formatUSD(cost.GetTotalMicros()), formatUSD(cost.GetLlmMicros()), formatUSD(cost.GetComputeMicros()))
	fmt.Fprintf(tw, "duration\t%s\n", runDuration(r))
	if len(written) == 0 {
		fmt.Fprintf(tw, "files written\tnone\n")
	}
	for i, p := range written {
		label := ""
		if i == 0 {
			label = "files written"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\n", label, p, humanBytes(r.GetOutputs()[i].GetSizeBytes()))
	}
	tw.Flush()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// newRunsCmd is `airlock runs list | show ID | watch ID | cancel ID`.
func newRunsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, show, watch and cancel runs (yours; an operator's: the tenant's)",
	}
	cmd.AddCommand(newRunsListCmd(), newRunsShowCmd(), newRunsWatchCmd(), newRunsCancelCmd())
	return cmd
}

func printRunJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func newRunsListCmd() *cobra.Command {
	var state, requester, pageToken string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &orchestratorv1.ListRunsRequest{Requester: requester, PageSize: int32(limit), PageToken: pageToken}
			if state != "" {
				v, ok := orchestratorv1.RunState_value["RUN_STATE_"+strings.ToUpper(state)]
				if !ok || v == 0 {
					return fmt.Errorf("--state %q: want received, generating, checking, awaiting_approval, executing, succeeded, failed, denied, rejected, budget_exceeded, cancelled or expired", state)
				}
				req.State = orchestratorv1.RunState(v)
			}
			c, err := orchestratorClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.ListRuns(cmd.Context(), req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printRunJSON(w, resp)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tREQUESTER\tATTEMPTS\tCOST\tCREATED\tJOB")
			for _, r := range resp.GetRuns() {
				job := "code"
				if r.GetPrompt() != "" {
					job = r.GetPrompt()
					if len(job) > 40 {
						job = job[:40] + "…"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.GetId(), stateName(r.GetState()), r.GetRequester(),
					len(r.GetAttempts()), formatUSD(r.GetCost().GetTotalMicros()),
					r.GetCreatedAt().AsTime().Local().Format("2006-01-02 15:04:05"), strings.ReplaceAll(job, "\n", " "))
			}
			tw.Flush()
			if resp.GetNextPageToken() != "" {
				fmt.Fprintf(w, "more: --page-token %s\n", resp.GetNextPageToken())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only runs in this state, such as succeeded or awaiting_approval")
	cmd.Flags().StringVar(&requester, "requester", "", "only runs by this subject (operators)")
	cmd.Flags().IntVar(&limit, "limit", 20, "runs per page")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "continue a previous listing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

func newRunsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a run: its attempts, verdicts, approval, execution, costs and files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := orchestratorClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.GetRun(cmd.Context(), &orchestratorv1.GetRunRequest{RunId: args[0]})
			if err != nil {
				return err
			}
			if asJSON {
				return printRunJSON(cmd.OutOrStdout(), resp.GetRun())
			}
			printRun(cmd.OutOrStdout(), resp.GetRun())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

func printRun(w io.Writer, r *orchestratorv1.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", r.GetId())
	fmt.Fprintf(tw, "state\t%s\n", stateName(r.GetState()))
	if r.GetFailureReason() != "" {
		fmt.Fprintf(tw, "reason\t%s\n", r.GetFailureReason())
	}
	fmt.Fprintf(tw, "requester\t%s/%s\n", r.GetTenant(), r.GetRequester())
	if r.GetPrompt() != "" {
		fmt.Fprintf(tw, "prompt\t%s\n", r.GetPrompt())
	} else {
		fmt.Fprintf(tw, "job\tsupplied code\n")
	}
	for _, in := range r.GetInputs() {
		fmt.Fprintf(tw, "input\t%s (%s, sha256 %s)\n", in.GetName(), humanBytes(in.GetSizeBytes()), in.GetSha256())
	}
	if r.GetApprovalId() != "" {
		fmt.Fprintf(tw, "approval\t%s\n", r.GetApprovalId())
	}
	cost := r.GetCost()
	fmt.Fprintf(tw, "cost\t%s (model %s, compute %s)\n", formatUSD(cost.GetTotalMicros()), formatUSD(cost.GetLlmMicros()), formatUSD(cost.GetComputeMicros()))
	fmt.Fprintf(tw, "created\t%s\n", r.GetCreatedAt().AsTime().Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "duration\t%s\n", runDuration(r))
	if r.GetTraceId() != "" {
		fmt.Fprintf(tw, "trace\t%s\n", r.GetTraceId())
	}
	for _, f := range r.GetOutputs() {
		fmt.Fprintf(tw, "output\t%s (%s) id %s\n", f.GetName(), humanBytes(f.GetSizeBytes()), f.GetFileId())
	}
	tw.Flush()
	for _, a := range r.GetAttempts() {
		fmt.Fprintf(w, "\nattempt %d  code sha256 %s\n", a.GetNumber(), a.GetCodeSha256())
		fmt.Fprintf(w, "  verdict %s (policy %s, version %.12s)\n", strings.TrimPrefix(a.GetVerdict().String(), "VERDICT_"), a.GetPolicyId(), a.GetPolicyVersion())
		for _, f := range a.GetFindings() {
			fmt.Fprintf(w, "    line %d:%d %s [%s] %s\n", f.GetLine(), f.GetColumn(), strings.TrimPrefix(f.GetAction().String(), "VERDICT_"), f.GetRuleId(), f.GetMessage())
		}
		fmt.Fprintf(w, "  cost: generation %s, execution %s\n", formatUSD(a.GetGenerationCostMicros()), formatUSD(a.GetExecutionCostMicros()))
		if x := a.GetExecution(); x != nil {
			fmt.Fprintf(w, "  execution: %s, exit code %d, wall %s, cpu %s", strings.TrimPrefix(x.GetTerminationReason().String(), "TERMINATION_REASON_"),
				x.GetExitCode(), x.GetUsage().GetWallTime().AsDuration().Round(time.Millisecond), x.GetUsage().GetCpuTime().AsDuration().Round(time.Millisecond))
			if x.GetMessage() != "" {
				fmt.Fprintf(w, " (%s)", x.GetMessage())
			}
			fmt.Fprintln(w)
			if s := strings.TrimSpace(string(x.GetStderr())); s != "" {
				fmt.Fprintf(w, "  stderr:\n    %s\n", strings.ReplaceAll(s, "\n", "\n    "))
			}
		}
		fmt.Fprintf(w, "  code:\n    %s\n", strings.ReplaceAll(strings.TrimRight(a.GetCode(), "\n"), "\n", "\n    "))
	}
}

func newRunsWatchCmd() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a run's progress until it ends; exit 0 only if it SUCCEEDED",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := orchestratorClient(cmd)
			if err != nil {
				return err
			}
			r, err := followRun(cmd.Context(), c, cmd.OutOrStdout(), args[0])
			if err != nil {
				return err
			}
			var written []string
			if outDir != "" {
				written, err = downloadOutputs(cmd.Context(), c, r, outDir)
			}
			printRunSummary(cmd.OutOrStdout(), r, written)
			if err != nil {
				return err
			}
			return runExit(r)
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "", "also write the output files to this directory")
	return cmd
}

func newRunsCancelCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a run that has not ended; money it holds is released",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := orchestratorClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.CancelRun(cmd.Context(), &orchestratorv1.CancelRunRequest{RunId: args[0], Reason: reason})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s is %s\n", resp.GetRun().GetId(), stateName(resp.GetRun().GetState()))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record")
	return cmd
}
