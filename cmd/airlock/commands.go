package main

import "github.com/spf13/cobra"

// operatorCommands lists the CLI commands beyond serving. Each service's
// commands live in a file of their own (cmd_<service>.go); a constructor
// returns nil while its commands are not built yet, so none pretends to work.
func operatorCommands() []*cobra.Command {
	var cmds []*cobra.Command
	for _, f := range []func() *cobra.Command{
		newExecCmd,      // cmd_executor.go
		newPolicyCmd,    // cmd_policy.go
		newBudgetCmd,    // cmd_budget.go
		newApprovalsCmd, // cmd_approval.go
		newKeysCmd,      // cmd_keys.go
		newRunCmd,       // cmd_orchestrator.go
		newRunsCmd,      // cmd_orchestrator.go
		newHealthCmd,    // health.go (container health checks)
	} {
		if c := f(); c != nil {
			cmds = append(cmds, c)
		}
	}
	return cmds
}
