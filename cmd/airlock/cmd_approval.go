package main

import "github.com/spf13/cobra"

// newApprovalsCmd is not built yet.
func newApprovalsCmd() *cobra.Command { return nil }
