package main

import "github.com/spf13/cobra"

// newKeysCmd is not built yet.
func newKeysCmd() *cobra.Command { return nil }
