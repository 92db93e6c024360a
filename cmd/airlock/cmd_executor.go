package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/services/executor"
	"github.com/airlockhq/airlock/services/executor/sandbox"
)

// The sandbox runs airlock-sandbox, next to this binary, as its launch and
// init helpers; without it, it re-executes this binary instead (slower: this
// binary's start-up lands on every cold run). This runs before main and exits
// when the arguments name a helper.
func init() { sandbox.RunHelper() }

// Exit codes of `airlock exec` when the script did not exit by itself.
const (
	execExitTimeout = 124 // like timeout(1)
	execExitLimit   = 125 // CPU, memory or output limit, or killed
)

// newExecCmd is `airlock exec`: the sandbox alone, locally, no server.
func newExecCmd() *cobra.Command {
	var (
		inputs   []string
		outDir   string
		timeout  time.Duration
		cpuTime  time.Duration
		memory   executor.Size
		imports  []string
		asJSON   bool
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "exec FILE.py",
		Short: "Run a Python file in the sandbox locally (no server): prints its output, writes its files to --out",
		Long: `Run a Python file in the same bubblewrap sandbox the executor service uses,
with inputs read-only at /data/in/<name> and output files collected from /data/out.
The exit code is the script's own when it exited by itself, 124 on TIMEOUT and
125 on any other limit (CPU_LIMIT, MEMORY_LIMIT, OUTPUT_LIMIT) or KILLED.`,
		Args: cobra.ExactArgs(1),
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&inputs, "input", nil, "input file, mounted read-only at /data/in/<its base name> (repeatable)")
	fs.StringVar(&outDir, "out", "", "directory to write the output files to (default: not written)")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "wall-clock limit")
	fs.DurationVar(&cpuTime, "cpu-time", 0, "CPU-time limit (default: the timeout)")
	memory = executor.Size(sandbox.DefaultLimits().MemoryBytes)
	fs.Var(&memory, "memory", "memory limit: bytes, or with a unit such as 256MiB or 1GiB")
	fs.StringSliceVar(&imports, "allow-import", executor.DefaultAllowedImports, "runtime guard's import allow-list")
	fs.BoolVar(&asJSON, "json", false, "print the result as protobuf JSON instead of the script's output")
	fs.StringVar(&logLevel, "log-level", "warn", "sandbox log level: debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		code, err := os.ReadFile(args[0])
		if err != nil {
			return fmt.Errorf("reading the script: %w", err)
		}
		spec := sandbox.Spec{Code: string(code), AllowedImports: imports, Cold: true}
		for _, p := range inputs {
			b, err := os.ReadFile(p)
			if err != nil {
				return config.Invalid("input", "reading %s: %v", p, err)
			}
			spec.Inputs = append(spec.Inputs, sandbox.Input{Name: filepath.Base(p), Content: b})
		}
		if err := sandbox.ValidateInputs(spec.Inputs); err != nil {
			return config.Invalid("input", "%v", err)
		}
		if cpuTime == 0 {
			cpuTime = max(timeout, time.Second)
		}
		maxl := sandbox.DefaultMaxLimits()
		spec.Limits, err = sandbox.Resolve(sandbox.Limits{Timeout: timeout, CPUTime: cpuTime, MemoryBytes: int64(memory)},
			sandbox.DefaultLimits(), maxl)
		if err != nil {
			var le *sandbox.LimitError
			if errors.As(err, &le) {
				return config.Invalid(flagSuffix(le), "%s", le.Reason)
			}
			return err
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return config.Invalid("log-level", "%q is not debug, info, warn or error", logLevel)
		}
		// One run: no warm pool and no spares, which would only be
		// prepared beside it and thrown away.
		runner, err := sandbox.New(sandbox.Config{Max: maxl,
			Log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))})
		if err != nil {
			return err
		}
		defer runner.Close()
		if err := runner.Check(); err != nil {
			return err
		}
		if !asJSON {
			var mu sync.Mutex
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			spec.OnOutput = func(s sandbox.Stream, b []byte) {
				mu.Lock()
				defer mu.Unlock()
				if s == sandbox.Stdout {
					_, _ = stdout.Write(b)
				} else {
					_, _ = stderr.Write(b)
				}
			}
		}
		res, err := runner.Run(cmd.Context(), spec)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return &exitError{code: 130, msg: "airlock exec: interrupted"}
			}
			return err
		}
		written, werr := writeOutputs(outDir, res.Files)
		if asJSON {
			b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(executor.ResultProto(res))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
		} else {
			if res.StdoutTruncated || res.StderrTruncated {
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			summary := fmt.Sprintf("airlock exec: %s: %s (wall %s, cpu %s, max rss %s)", res.Reason, res.Message,
				res.WallTime.Round(time.Millisecond), res.CPUTime.Round(time.Millisecond), executor.FormatSize(res.MaxRSSBytes))
			fmt.Fprintln(cmd.ErrOrStderr(), summary)
			if len(written) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "airlock exec: wrote %s\n", strings.Join(written, ", "))
			} else if len(res.Files) > 0 && outDir == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "airlock exec: %d output file(s) not written: use --out DIR\n", len(res.Files))
			}
		}
		if werr != nil {
			return werr
		}
		switch res.Reason {
		case sandbox.Exited:
			if res.ExitCode != 0 {
				return &exitError{code: res.ExitCode}
			}
			return nil
		case sandbox.Timeout:
			return &exitError{code: execExitTimeout}
		default:
			return &exitError{code: execExitLimit}
		}
	}
	return cmd
}

// writeOutputs writes the run's files under dir, never through a symlink
// already there, and returns the paths written.
func writeOutputs(dir string, files []sandbox.File) ([]string, error) {
	if dir == "" || len(files) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating --out: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening --out: %w", err)
	}
	defer root.Close()
	var written []string
	for _, f := range files {
		if d := filepath.Dir(f.Name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return written, fmt.Errorf("writing %s: %w", f.Name, err)
			}
		}
		if err := root.WriteFile(f.Name, f.Content, 0o644); err != nil {
			return written, fmt.Errorf("writing %s: %w", f.Name, err)
		}
		written = append(written, filepath.Join(dir, f.Name))
	}
	return written, nil
}
