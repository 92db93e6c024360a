// Command airlock serves Airlock's gRPC services and is the operator's CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/airlockhq/airlock/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "airlock:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a given code, after printing msg if set.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// run builds the command tree and executes args; main only handles the exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cl := &closers{}
	defer cl.closeAll()
	return root.ExecuteContext(context.WithValue(ctx, closersKey{}, cl))
}

// closers are what one command run opened (client connections, databases)
// and closes when it returns. They belong to that run, not to the process:
// cobra.OnFinalize would keep every run's closers and call them again after
// each later command in the same process.
type closers struct {
	mu  sync.Mutex
	fns []func()
}

type closersKey struct{}

// closeOnReturn has fn called when the command run of cmd returns.
func closeOnReturn(cmd *cobra.Command, fn func()) {
	if cl, ok := cmd.Context().Value(closersKey{}).(*closers); ok {
		cl.mu.Lock()
		cl.fns = append(cl.fns, fn)
		cl.mu.Unlock()
		return
	}
	// A command executed outside run (none today) closes at process exit.
	cobra.OnFinalize(fn)
}

func (c *closers) closeAll() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "airlock",
		Short:         "Run LLM-written Python on your own data, checked, paid for and sandboxed",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newDevCmd(),
		newMigrateCmd(),
	)
	root.AddCommand(operatorCommands()...)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "airlock", version.String())
			return nil
		},
	}
}
