package main

import "github.com/spf13/cobra"

// newExecCmd is not built yet.
func newExecCmd() *cobra.Command { return nil }
