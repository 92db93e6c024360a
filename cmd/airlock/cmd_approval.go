package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
)

// newApprovalsCmd lists, shows and decides approval requests, and verifies
// the audit trail, through the server (AIRLOCK_ADDR, AIRLOCK_TOKEN).
func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "approvals",
		Aliases: []string{"approval"},
		Short:   "List, show, approve and reject requests for review; verify the audit trail",
	}
	cmd.AddCommand(newApprovalsListCmd(), newApprovalsShowCmd(), newApprovalsDecideCmd(true),
		newApprovalsDecideCmd(false), newApprovalsVerifyCmd())
	return cmd
}

func approvalClient(cmd *cobra.Command) (approvalv1.ApprovalServiceClient, error) {
	conn, err := dialClient(cmd)
	if err != nil {
		return nil, err
	}
	return approvalv1.NewApprovalServiceClient(conn), nil
}

func newApprovalsListCmd() *cobra.Command {
	var state, requester, runID, pageToken string
	var limit int
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &approvalv1.ListApprovalsRequest{Requester: requester, RunId: runID, PageSize: int32(limit), PageToken: pageToken}
			if state != "" {
				v, ok := approvalv1.ApprovalState_value["APPROVAL_STATE_"+strings.ToUpper(state)]
				if !ok || v == 0 {
					return fmt.Errorf("--state %q: want pending, approved, rejected or expired", state)
				}
				req.State = approvalv1.ApprovalState(v)
			}
			c, err := approvalClient(cmd)
			if err != nil {
				return err
			}
			resp := &approvalv1.ListApprovalsResponse{}
			for {
				page, err := c.ListApprovals(cmd.Context(), req)
				if err != nil {
					return err
				}
				resp.Approvals = append(resp.Approvals, page.GetApprovals()...)
				resp.NextPageToken = page.GetNextPageToken()
				if !all || resp.NextPageToken == "" {
					break
				}
				req.PageToken = resp.NextPageToken
			}
			if asJSON {
				return printProtoJSON(cmd.OutOrStdout(), resp)
			}
			printApprovalTable(cmd.OutOrStdout(), resp.GetApprovals())
			if resp.NextPageToken != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --page-token %s (or --all)\n", resp.NextPageToken)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only requests in this state: pending, approved, rejected or expired")
	cmd.Flags().StringVar(&requester, "requester", "", "only requests by this subject")
	cmd.Flags().StringVar(&runID, "run", "", "only requests for this run id")
	cmd.Flags().IntVar(&limit, "limit", 0, "requests per page (server default 50, at most 500)")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "continue from a previous listing")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

func printApprovalTable(w io.Writer, list []*approvalv1.Approval) {
	if len(list) == 0 {
		fmt.Fprintln(w, "(no requests)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tRISK\tRUN\tREQUESTER\tCREATED\tEXPIRES\tDECIDED BY")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.GetId(), approvalStateName(a.GetState()), approvalRiskName(a.GetRisk()),
			a.GetRunId(), a.GetRequester(), approvalTime(a.GetCreatedAt()), approvalTime(a.GetExpiresAt()), approvalDash(a.GetDecidedBy()))
	}
	tw.Flush()
}

func newApprovalsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one request: its code, findings, inputs and decision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := approvalClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.GetApproval(cmd.Context(), &approvalv1.GetApprovalRequest{ApprovalId: args[0]})
			if err != nil {
				return err
			}
			if asJSON {
				return printProtoJSON(cmd.OutOrStdout(), resp.GetApproval())
			}
			printApproval(cmd.OutOrStdout(), resp.GetApproval())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

func printApproval(w io.Writer, a *approvalv1.Approval) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", a.GetId())
	row("state", approvalStateName(a.GetState()))
	row("risk", approvalRiskName(a.GetRisk()))
	row("run", a.GetRunId())
	row("requester", a.GetRequester())
	row("policy", a.GetPolicyId()+" @ "+a.GetPolicyVersion())
	row("code sha256", a.GetCodeSha256())
	row("created", approvalTime(a.GetCreatedAt()))
	row("expires", approvalTime(a.GetExpiresAt()))
	if a.GetDecidedAt() != nil {
		row("decided", approvalTime(a.GetDecidedAt())+" by "+a.GetDecidedBy())
		row("reason", approvalDash(a.GetReason()))
	}
	tw.Flush()
	if len(a.GetInputs()) > 0 {
		fmt.Fprintln(w, "\ninputs:")
		for _, in := range a.GetInputs() {
			fmt.Fprintf(w, "  %s (%d bytes)\n", in.GetName(), in.GetSizeBytes())
		}
	}
	fmt.Fprintf(w, "\nfindings (%d):\n", len(a.GetFindings()))
	for _, f := range a.GetFindings() {
		sev := strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_")
		fmt.Fprintf(w, "  %d:%d  %-8s %s  %s\n", f.GetLine(), f.GetColumn(), sev, f.GetRuleId(), f.GetMessage())
	}
	fmt.Fprintln(w, "\ncode:")
	for i, line := range strings.Split(strings.TrimRight(a.GetCode(), "\n"), "\n") {
		fmt.Fprintf(w, "%4d  %s\n", i+1, line)
	}
}

func newApprovalsDecideCmd(approve bool) *cobra.Command {
	var reason string
	var asJSON bool
	use, short, want := "reject ID --reason TEXT", "Reject a pending request (a reason is required)", approvalv1.ApprovalState_APPROVAL_STATE_REJECTED
	if approve {
		use, short, want = "approve ID", "Approve a pending request (never your own)", approvalv1.ApprovalState_APPROVAL_STATE_APPROVED
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !approve && strings.TrimSpace(reason) == "" {
				return errors.New("--reason is required to reject")
			}
			c, err := approvalClient(cmd)
			if err != nil {
				return err
			}
			var a *approvalv1.Approval
			if approve {
				resp, err := c.Approve(cmd.Context(), &approvalv1.ApproveRequest{ApprovalId: args[0], Reason: reason})
				if err != nil {
					return err
				}
				a = resp.GetApproval()
			} else {
				resp, err := c.Reject(cmd.Context(), &approvalv1.RejectRequest{ApprovalId: args[0], Reason: reason})
				if err != nil {
					return err
				}
				a = resp.GetApproval()
			}
			if asJSON {
				if err := printProtoJSON(cmd.OutOrStdout(), a); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s at %s\n", a.GetId(), approvalStateName(a.GetState()),
					a.GetDecidedBy(), approvalTime(a.GetDecidedAt()))
			}
			if a.GetState() != want {
				return &exitError{code: 1, msg: fmt.Sprintf("%s was already %s; decisions are final", a.GetId(), approvalStateName(a.GetState()))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; required to reject")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

func newApprovalsVerifyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain of the tenant's audit trail; exit 1 at the first broken link",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := approvalClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.VerifyTrail(cmd.Context(), &approvalv1.VerifyTrailRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				if err := printProtoJSON(cmd.OutOrStdout(), resp); err != nil {
					return err
				}
			} else if resp.GetOk() {
				fmt.Fprintf(cmd.OutOrStdout(), "trail intact: %s\n", resp.GetMessage())
			}
			if !resp.GetOk() {
				return &exitError{code: 1, msg: fmt.Sprintf("trail BROKEN at event %d (%d events read): %s",
					resp.GetFirstBrokenSequence(), resp.GetEventsChecked(), resp.GetMessage())}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

func approvalStateName(s approvalv1.ApprovalState) string {
	return strings.TrimPrefix(s.String(), "APPROVAL_STATE_")
}

func approvalRiskName(r approvalv1.RiskLevel) string {
	return strings.TrimPrefix(r.String(), "RISK_LEVEL_")
}

func approvalTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func approvalDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
