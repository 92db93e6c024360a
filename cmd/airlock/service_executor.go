package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/pflag"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/services/executor"
	"github.com/airlockhq/airlock/services/executor/sandbox"
)

// executorFlags are the executor's settings (all prefixed executor-).
type executorFlags struct {
	bwrap, python, workDir          string
	poolSize, maxConcurrent, spares int
	tmpSize                         executor.Size
	uidBase                         int
	noCgroups, noLandlock           bool
	allowedImports                  []string
	def, max                        limitFlags
}

// limitFlags are one set of limits (defaults or maxima) as flags.
type limitFlags struct {
	timeout, cpuTime                          time.Duration
	memory, outputBytes, stdoutBytes, stderrB executor.Size
	processes, outputFiles, openFiles         int
}

func (l *limitFlags) register(fs *pflag.FlagSet, kind string, v sandbox.Limits) {
	l.timeout, l.cpuTime = v.Timeout, v.CPUTime
	l.memory, l.outputBytes = executor.Size(v.MemoryBytes), executor.Size(v.MaxOutputBytes)
	l.stdoutBytes, l.stderrB = executor.Size(v.MaxStdoutBytes), executor.Size(v.MaxStderrBytes)
	l.processes, l.outputFiles, l.openFiles = v.MaxProcesses, v.MaxOutputFiles, v.MaxOpenFiles
	what := map[string]string{"default": "default for a run that sets none", "max": "most a run may ask for"}[kind]
	p := "executor-" + kind + "-"
	fs.DurationVar(&l.timeout, p+"timeout", l.timeout, "wall-clock limit: "+what)
	fs.DurationVar(&l.cpuTime, p+"cpu-time", l.cpuTime, "CPU-time limit: "+what)
	fs.Var(&l.memory, p+"memory", "memory limit (e.g. 512MiB): "+what)
	fs.IntVar(&l.processes, p+"processes", l.processes, "processes and threads: "+what)
	fs.Var(&l.outputBytes, p+"output-bytes", "total size of output files: "+what)
	fs.IntVar(&l.outputFiles, p+"output-files", l.outputFiles, "number of output files: "+what)
	fs.Var(&l.stdoutBytes, p+"stdout-bytes", "captured stdout: "+what)
	fs.Var(&l.stderrB, p+"stderr-bytes", "captured stderr: "+what)
	fs.IntVar(&l.openFiles, p+"open-files", l.openFiles, "open file descriptors: "+what)
}

func (l *limitFlags) limits() sandbox.Limits {
	return sandbox.Limits{
		Timeout: l.timeout, CPUTime: l.cpuTime, MemoryBytes: int64(l.memory), MaxProcesses: l.processes,
		MaxOutputBytes: int64(l.outputBytes), MaxOutputFiles: l.outputFiles, MaxStdoutBytes: int64(l.stdoutBytes),
		MaxStderrBytes: int64(l.stderrB), MaxOpenFiles: l.openFiles,
	}
}

func (f *executorFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.bwrap, "executor-bwrap", "/usr/bin/bwrap", "bubblewrap binary")
	fs.StringVar(&f.python, "executor-python", "/usr/bin/python3", "Python with pandas, numpy and openpyxl")
	fs.StringVar(&f.workDir, "executor-work-dir", "", "where per-sandbox directories live (default: the system temp dir)")
	fs.IntVar(&f.poolSize, "executor-pool-size", 2, "warm sandboxes kept ready (pandas, numpy, openpyxl imported); 0 disables the pool")
	fs.IntVar(&f.maxConcurrent, "executor-max-concurrent", 8, "runs at once; more wait")
	fs.IntVar(&f.spares, "executor-spares", sandbox.DefaultSpares, "cold sandboxes kept prepared (directories, cgroup, launch helper) for runs the warm pool cannot serve; 0 disables them")
	f.tmpSize = 64 << 20
	fs.Var(&f.tmpSize, "executor-tmp-size", "size of each sandbox's private /tmp")
	fs.IntVar(&f.uidBase, "executor-uid-base", 1_000_000, "first of 65536 host uids given to sandboxes (when running as root)")
	fs.BoolVar(&f.noCgroups, "executor-no-cgroups", false, "do not make per-run cgroups; limit memory and processes with rlimits only")
	fs.BoolVar(&f.noLandlock, "executor-no-landlock", false, "skip the Landlock layer inside the sandbox")
	fs.StringSliceVar(&f.allowedImports, "executor-allowed-imports", executor.DefaultAllowedImports,
		"runtime guard's import allow-list for requests that send none")
	f.def.register(fs, "default", sandbox.DefaultLimits())
	f.max.register(fs, "max", sandbox.DefaultMaxLimits())
}

// sandboxConfig validates the flags into a runner configuration.
func (f *executorFlags) sandboxConfig() (sandbox.Config, error) {
	if f.poolSize < 0 || f.poolSize > 64 {
		return sandbox.Config{}, config.Invalid("executor-pool-size", "%d is not between 0 and 64", f.poolSize)
	}
	if f.spares < 0 || f.spares > 64 {
		return sandbox.Config{}, config.Invalid("executor-spares", "%d is not between 0 and 64", f.spares)
	}
	if f.maxConcurrent < 1 {
		return sandbox.Config{}, config.Invalid("executor-max-concurrent", "must be at least 1")
	}
	def, maxl := f.def.limits(), f.max.limits()
	if _, err := sandbox.Resolve(maxl, maxl, maxl); err != nil {
		return sandbox.Config{}, config.Invalid("executor-max-"+flagSuffix(err), "%v", err)
	}
	if _, err := sandbox.Resolve(def, def, maxl); err != nil {
		return sandbox.Config{}, config.Invalid("executor-default-"+flagSuffix(err), "%v", err)
	}
	return sandbox.Config{
		Bwrap: f.bwrap, Python: f.python, WorkDir: f.workDir, PoolSize: f.poolSize, MaxConcurrent: f.maxConcurrent,
		TmpBytes: int64(f.tmpSize), Defaults: def, Max: maxl, UIDBase: f.uidBase,
		NoCgroups: f.noCgroups, NoLandlock: f.noLandlock, Spares: f.spares,
	}, nil
}

// flagSuffix maps a limit's proto field name to its flag suffix (the
// flag's own name for airlock exec's --timeout, --cpu-time and --memory).
func flagSuffix(err error) string {
	var le *sandbox.LimitError
	if !errors.As(err, &le) {
		return "limits"
	}
	return map[string]string{
		"timeout": "timeout", "cpu_time": "cpu-time", "memory_bytes": "memory", "max_processes": "processes",
		"max_output_bytes": "output-bytes", "max_output_files": "output-files", "max_stdout_bytes": "stdout-bytes",
		"max_stderr_bytes": "stderr-bytes", "max_open_files": "open-files",
	}[le.Field]
}

// executorService runs code in bubblewrap sandboxes. Execute and
// ExecuteStream are for the orchestrator (service) and admins. Health is
// NOT_SERVING while bwrap or Python with pandas is missing.
func executorService() *serviceSpec {
	var f executorFlags
	return &serviceSpec{
		Name:     "executor",
		FullName: executorv1.ExecutorService_ServiceDesc.ServiceName,
		Rules:    executor.Rules(),
		Flags:    f.register,
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			cfg, err := f.sandboxConfig()
			if err != nil {
				return nil, err
			}
			cfg.Log = env.Log.With("service", "executor")
			runner, err := sandbox.New(cfg)
			if err != nil {
				return nil, err
			}
			if err := runner.Check(); err != nil {
				cfg.Log.Error("sandbox runtime unavailable: executor health is NOT_SERVING", "error", err)
			}
			env.Server.AddHealthCheck(executorv1.ExecutorService_ServiceDesc.ServiceName, "sandbox",
				func(context.Context) error { return runner.Check() })
			executorv1.RegisterExecutorServiceServer(env.Server.GRPC(),
				executor.NewServer(runner, cfg.Defaults, cfg.Max, f.allowedImports, cfg.Log))
			return runner.Close, nil
		},
	}
}
