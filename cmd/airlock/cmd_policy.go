package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/services/policy"
	"github.com/airlockhq/airlock/services/policy/analysis"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

// Exit codes of `airlock policy check`.
const (
	exitAllow       = 0
	exitReview      = 1
	exitDeny        = 2
	exitPolicyError = 3
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with policies locally",
	}
	cmd.AddCommand(newPolicyCheckCmd())
	return cmd
}

func newPolicyCheckCmd() *cobra.Command {
	var policyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check FILE.py",
		Short: "Judge a Python file against a policy, locally; exit 0 ALLOW, 1 REVIEW, 2 DENY (3 on errors)",
		// Usage errors exit 3 too, so 1 always means REVIEW.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: exitPolicyError, msg: "airlock: policy check takes exactly one FILE.py"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			pol, err := loadCheckPolicy(policyFile)
			if err != nil {
				return &exitError{code: exitPolicyError, msg: "airlock: " + err.Error()}
			}
			code, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{code: exitPolicyError, msg: "airlock: reading the code: " + err.Error()}
			}
			res, err := pol.Check(cmd.Context(), code, analysis.Options{})
			if err != nil {
				return &exitError{code: exitPolicyError, msg: fmt.Sprintf("airlock: %s: %v", args[0], err)}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				resp := policy.CheckResponsePB(pol, res, len(res.Findings))
				b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
			} else {
				printCheck(out, args[0], pol, res)
			}
			switch res.Verdict {
			case analysis.Deny:
				return &exitError{code: exitDeny}
			case analysis.Review:
				return &exitError{code: exitReview}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitPolicyError, msg: "airlock: " + err.Error()}
	})
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file (default ./policies/default.yaml, else the built-in default)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the CheckResponse as JSON")
	return cmd
}

func loadCheckPolicy(file string) (*policydoc.Policy, error) {
	if file != "" {
		return policydoc.LoadFile(file)
	}
	def := filepath.Join(defaultPolicyDir, "default.yaml")
	if _, err := os.Stat(def); errors.Is(err, fs.ErrNotExist) {
		return policydoc.Parse("builtin:default.yaml", policies.Default)
	}
	return policydoc.LoadFile(def)
}

func printCheck(out interface{ Write([]byte) (int, error) }, file string, pol *policydoc.Policy, res *policydoc.Result) {
	fmt.Fprintf(out, "%s: %s (policy %s @ %.12s, %d finding(s))\n", file, res.Verdict, pol.ID, pol.Version, len(res.Findings))
	for _, f := range res.Findings {
		fmt.Fprintf(out, "\n%s:%d:%d: %s %s [%s]\n  %s\n", file, f.Line, f.Column, f.Action, f.RuleID,
			strings.ToLower(f.Severity.String()), f.Message)
		if f.Snippet != "" {
			fmt.Fprintf(out, "  | %s\n", f.Snippet)
		}
		if f.FixHint != "" {
			fmt.Fprintf(out, "  fix: %s\n", f.FixHint)
		}
	}
}
