package main

import "github.com/spf13/cobra"

// newPolicyCmd is not built yet.
func newPolicyCmd() *cobra.Command { return nil }
