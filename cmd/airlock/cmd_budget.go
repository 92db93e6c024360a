package main

import "github.com/spf13/cobra"

// newBudgetCmd is not built yet.
func newBudgetCmd() *cobra.Command { return nil }
