package main

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// What a command run opens is closed when that run returns, once, newest
// first, and never again by a later run in the same process.
func TestClosersBelongToOneRun(t *testing.T) {
	var closed []string
	cl := &closers{}
	cmd := &cobra.Command{}
	cmd.SetContext(context.WithValue(context.Background(), closersKey{}, cl))
	closeOnReturn(cmd, func() { closed = append(closed, "conn") })
	closeOnReturn(cmd, func() { closed = append(closed, "db") })
	require.Empty(t, closed)
	cl.closeAll()
	require.Equal(t, []string{"db", "conn"}, closed)
	cl.closeAll()
	require.Equal(t, []string{"db", "conn"}, closed, "a second close calls nothing again")
}
