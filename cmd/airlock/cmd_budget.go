package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
)

// newBudgetCmd sets and reads budgets through the server (AIRLOCK_ADDR,
// AIRLOCK_TOKEN). Without --user a command acts on the tenant's budget.
func newBudgetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "budget",
		Aliases: []string{"budgets"},
		Short:   "Set and show budgets, and report spend",
	}
	cmd.AddCommand(newBudgetSetCmd(), newBudgetShowCmd(), newBudgetUsageCmd())
	return cmd
}

func budgetClient(cmd *cobra.Command) (budgetv1.BudgetServiceClient, error) {
	conn, err := dialClient(cmd)
	if err != nil {
		return nil, err
	}
	return budgetv1.NewBudgetServiceClient(conn), nil
}

func budgetScope(user string) *budgetv1.Scope {
	if user != "" {
		return &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: user}
	}
	return &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}
}

// parseUSD turns "12.5", "$12.50" or "0.000001" into micro-dollars exactly.
func parseUSD(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" || strings.HasPrefix(whole, "-") || strings.HasPrefix(whole, "+") {
		return 0, fmt.Errorf("%q is not a non-negative amount in USD such as 25 or 12.50", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("%q has more than 6 decimal places (a micro-dollar is the smallest unit)", s)
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1_000_000_000 {
		return 0, fmt.Errorf("%q is not an amount in USD up to 1,000,000,000", s)
	}
	var f int64
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil || f < 0 {
			return 0, fmt.Errorf("%q is not an amount in USD", s)
		}
	}
	return w*1_000_000 + f, nil
}

// formatUSD renders micro-dollars as dollars with six decimals.
func formatUSD(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	return fmt.Sprintf("%s$%d.%06d", sign, micros/1_000_000, micros%1_000_000)
}

func newBudgetSetCmd() *cobra.Command {
	var user, period, limit, zone string
	var thresholds []int32
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set --limit USD [--period monthly] [--user NAME]",
		Short: "Create or replace the tenant's budget, or a user's with --user (operators)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			micros, err := parseUSD(limit)
			if err != nil {
				return fmt.Errorf("--limit: %w", err)
			}
			p, ok := budgetv1.Period_value["PERIOD_"+strings.ToUpper(period)]
			if !ok || p == 0 {
				return fmt.Errorf("--period %q: want daily, weekly, monthly or lifetime", period)
			}
			c, err := budgetClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.SetBudget(cmd.Context(), &budgetv1.SetBudgetRequest{Scope: budgetScope(user),
				Period: budgetv1.Period(p), LimitMicros: micros, ThresholdsPercent: thresholds, TimeZone: zone})
			if err != nil {
				return err
			}
			return printBudget(cmd.OutOrStdout(), resp.GetBudget(), asJSON)
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "set this user's budget instead of the tenant's")
	cmd.Flags().StringVar(&period, "period", "monthly", "daily, weekly, monthly or lifetime")
	cmd.Flags().StringVar(&limit, "limit", "", "hard limit per period in USD, such as 25 or 12.50")
	cmd.Flags().Int32SliceVar(&thresholds, "thresholds", nil, "soft thresholds in percent (default 50,80,100)")
	cmd.Flags().StringVar(&zone, "time-zone", "", "IANA zone periods start in (default: the server's --budget-time-zone)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the budget as JSON")
	_ = cmd.MarkFlagRequired("limit")
	return cmd
}

func newBudgetShowCmd() *cobra.Command {
	var user string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show [--user NAME]",
		Short: "Show the tenant's budget, or a user's, with the current period's spend",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := budgetClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.GetBudget(cmd.Context(), &budgetv1.GetBudgetRequest{Scope: budgetScope(user)})
			if err != nil {
				return err
			}
			return printBudget(cmd.OutOrStdout(), resp.GetBudget(), asJSON)
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "show this user's budget instead of the tenant's")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the budget as JSON")
	return cmd
}

func newBudgetUsageCmd() *cobra.Command {
	var user, at string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "usage [--user NAME] [--at TIME]",
		Short: "Report spend in a period, by kind and model",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &budgetv1.GetUsageRequest{Scope: budgetScope(user)}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					if t, err = time.Parse(time.DateOnly, at); err != nil {
						return fmt.Errorf("--at %q: want 2026-01-31 or 2026-01-31T12:00:00Z", at)
					}
				}
				req.At = timestamppb.New(t)
			}
			c, err := budgetClient(cmd)
			if err != nil {
				return err
			}
			resp, err := c.GetUsage(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return printProtoJSON(cmd.OutOrStdout(), resp)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "scope:    %s\n", scopeLabel(resp.GetScope()))
			fmt.Fprintf(w, "period:   %s\n", periodLabel(resp.GetPeriodStart(), resp.GetPeriodEnd()))
			if resp.GetLimitMicros() >= 0 {
				fmt.Fprintf(w, "limit:    %s\n", formatUSD(resp.GetLimitMicros()))
			} else {
				fmt.Fprintln(w, "limit:    none (no budget set)")
			}
			fmt.Fprintf(w, "spent:    %s\nreserved: %s\n", formatUSD(resp.GetSpentMicros()), formatUSD(resp.GetReservedMicros()))
			if len(resp.GetBreakdown()) > 0 {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "\nKIND\tMODEL\tSPENT")
				for _, l := range resp.GetBreakdown() {
					kind := strings.ToLower(strings.TrimPrefix(l.GetKind().String(), "COST_KIND_"))
					fmt.Fprintf(tw, "%s\t%s\t%s\n", kind, l.GetModel(), formatUSD(l.GetAmountMicros()))
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "report this user's spend instead of the tenant's")
	cmd.Flags().StringVar(&at, "at", "", "report the period containing this time (default now)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func scopeLabel(s *budgetv1.Scope) string {
	if s.GetKind() == budgetv1.ScopeKind_SCOPE_KIND_USER {
		return "user " + s.GetSubject()
	}
	return "tenant"
}

func periodLabel(start, end *timestamppb.Timestamp) string {
	if end == nil {
		return "lifetime"
	}
	return start.AsTime().Format(time.RFC3339) + " to " + end.AsTime().Format(time.RFC3339)
}

func printProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func printBudget(w io.Writer, b *budgetv1.Budget, asJSON bool) error {
	if asJSON {
		return printProtoJSON(w, b)
	}
	period := strings.ToLower(strings.TrimPrefix(b.GetPeriod().String(), "PERIOD_"))
	fmt.Fprintf(w, "scope:      %s (tenant %s)\n", scopeLabel(b.GetScope()), b.GetTenant())
	fmt.Fprintf(w, "period:     %s in %s, now %s\n", period, b.GetTimeZone(), periodLabel(b.GetPeriodStart(), b.GetPeriodEnd()))
	fmt.Fprintf(w, "limit:      %s\n", formatUSD(b.GetLimitMicros()))
	fmt.Fprintf(w, "spent:      %s\n", formatUSD(b.GetSpentMicros()))
	fmt.Fprintf(w, "reserved:   %s\n", formatUSD(b.GetReservedMicros()))
	fmt.Fprintf(w, "available:  %s\n", formatUSD(max(b.GetLimitMicros()-b.GetSpentMicros()-b.GetReservedMicros(), 0)))
	th := make([]string, len(b.GetThresholdsPercent()))
	for i, t := range b.GetThresholdsPercent() {
		th[i] = strconv.Itoa(int(t)) + "%"
	}
	_, err := fmt.Fprintf(w, "thresholds: %s\n", strings.Join(th, ", "))
	return err
}
