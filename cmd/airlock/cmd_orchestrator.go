package main

import "github.com/spf13/cobra"

// newRunCmd is not built yet.
func newRunCmd() *cobra.Command { return nil }

// newRunsCmd is not built yet.
func newRunsCmd() *cobra.Command { return nil }
