// Package sandbox runs Python in a throwaway bubblewrap sandbox with hard limits.
package sandbox

import (
	"errors"
	"fmt"
	"time"
)

// Reason says why a run ended.
type Reason int

// Termination reasons, one per limit, as the executor's contract names them.
const (
	Exited Reason = iota + 1
	Timeout
	CPULimit
	MemoryLimit
	OutputLimit
	Killed
)

func (r Reason) String() string {
	switch r {
	case Exited:
		return "EXITED"
	case Timeout:
		return "TIMEOUT"
	case CPULimit:
		return "CPU_LIMIT"
	case MemoryLimit:
		return "MEMORY_LIMIT"
	case OutputLimit:
		return "OUTPUT_LIMIT"
	case Killed:
		return "KILLED"
	}
	return "UNSPECIFIED"
}

// Stream names stdout or stderr.
type Stream int

// The two output streams.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// Limits bound one run. Zero means "use the default" in a request and is
// invalid in a Runner's defaults or maxima.
type Limits struct {
	Timeout        time.Duration
	CPUTime        time.Duration
	MemoryBytes    int64
	MaxProcesses   int
	MaxOutputBytes int64
	MaxOutputFiles int
	MaxStdoutBytes int64
	MaxStderrBytes int64
	MaxOpenFiles   int
}

// DefaultLimits are the built-in defaults for a run.
func DefaultLimits() Limits {
	return Limits{
		Timeout: 30 * time.Second, CPUTime: 30 * time.Second, MemoryBytes: 512 << 20,
		MaxProcesses: 64, MaxOutputBytes: 16 << 20, MaxOutputFiles: 100,
		MaxStdoutBytes: 1 << 20, MaxStderrBytes: 1 << 20, MaxOpenFiles: 256,
	}
}

// DefaultMaxLimits are the built-in maxima a request may ask for. Output
// files, stdout and stderr together stay under 64 MiB, the default gRPC
// message cap, so a whole result always fits in a response.
func DefaultMaxLimits() Limits {
	return Limits{
		Timeout: 5 * time.Minute, CPUTime: 5 * time.Minute, MemoryBytes: 4 << 30,
		MaxProcesses: 256, MaxOutputBytes: 40 << 20, MaxOutputFiles: 1000,
		MaxStdoutBytes: 8 << 20, MaxStderrBytes: 8 << 20, MaxOpenFiles: 1024,
	}
}

// LimitError names a limit field that is out of range.
type LimitError struct {
	Field  string // the proto field name, e.g. "memory_bytes"
	Reason string
}

func (e *LimitError) Error() string { return e.Field + ": " + e.Reason }

// ErrLimit is wrapped by every *LimitError.
var ErrLimit = errors.New("limit out of range")

// Unwrap lets errors.Is(err, ErrLimit) match.
func (e *LimitError) Unwrap() error { return ErrLimit }

// Resolve fills zero fields of req from def and refuses any field above max
// or below zero. It never clamps: a caller asking for more than allowed is
// told so, naming the field.
func Resolve(req, def, max Limits) (Limits, error) {
	out := req
	durs := []struct {
		name          string
		v             *time.Duration
		def, max, min time.Duration
	}{
		{"timeout", &out.Timeout, def.Timeout, max.Timeout, 10 * time.Millisecond},
		{"cpu_time", &out.CPUTime, def.CPUTime, max.CPUTime, time.Second},
	}
	for _, d := range durs {
		switch {
		case *d.v < 0:
			return Limits{}, &LimitError{d.name, "must not be negative"}
		case *d.v == 0:
			*d.v = d.def
		case *d.v > d.max:
			return Limits{}, &LimitError{d.name, fmt.Sprintf("%s is above the maximum %s", *d.v, d.max)}
		case *d.v < d.min:
			return Limits{}, &LimitError{d.name, fmt.Sprintf("%s is below the minimum %s", *d.v, d.min)}
		}
	}
	ints := []struct {
		name          string
		v             *int64
		def, max, min int64
	}{
		{"memory_bytes", &out.MemoryBytes, def.MemoryBytes, max.MemoryBytes, 32 << 20},
		{"max_output_bytes", &out.MaxOutputBytes, def.MaxOutputBytes, max.MaxOutputBytes, 1},
		{"max_stdout_bytes", &out.MaxStdoutBytes, def.MaxStdoutBytes, max.MaxStdoutBytes, 1},
		{"max_stderr_bytes", &out.MaxStderrBytes, def.MaxStderrBytes, max.MaxStderrBytes, 1},
	}
	for _, d := range ints {
		switch {
		case *d.v < 0:
			return Limits{}, &LimitError{d.name, "must not be negative"}
		case *d.v == 0:
			*d.v = d.def
		case *d.v > d.max:
			return Limits{}, &LimitError{d.name, fmt.Sprintf("%d is above the maximum %d", *d.v, d.max)}
		case *d.v < d.min:
			return Limits{}, &LimitError{d.name, fmt.Sprintf("%d is below the minimum %d", *d.v, d.min)}
		}
	}
	small := []struct {
		name          string
		v             *int
		def, max, min int
	}{
		{"max_processes", &out.MaxProcesses, def.MaxProcesses, max.MaxProcesses, 1},
		{"max_output_files", &out.MaxOutputFiles, def.MaxOutputFiles, max.MaxOutputFiles, 1},
		{"max_open_files", &out.MaxOpenFiles, def.MaxOpenFiles, max.MaxOpenFiles, 16},
	}
	for _, d := range small {
		switch {
		case *d.v < 0:
			return Limits{}, &LimitError{d.name, "must not be negative"}
		case *d.v == 0:
			*d.v = d.def
		case *d.v > d.max:
			return Limits{}, &LimitError{d.name, fmt.Sprintf("%d is above the maximum %d", *d.v, d.max)}
		case *d.v < d.min:
			return Limits{}, &LimitError{d.name, fmt.Sprintf("%d is below the minimum %d", *d.v, d.min)}
		}
	}
	return out, nil
}

// Input is one file mounted read-only at /data/in/<Name>.
type Input struct {
	Name    string
	Content []byte
}

// File is one regular file the code left under /data/out.
type File struct {
	Name    string // relative to /data/out, '/'-separated
	Content []byte
	SHA256  string
}

// Spec is one run.
type Spec struct {
	Code   string
	Inputs []Input
	// Limits must be resolved (see Resolve): every field set.
	Limits Limits
	// AllowedImports is the runtime guard's allow-list of top-level modules.
	AllowedImports []string
	// RunID ties the run to an orchestrator run, for logs.
	RunID string
	// OnOutput, when set, receives stdout and stderr chunks as they come
	// (up to the caps), from one goroutine per stream.
	OnOutput func(Stream, []byte)
	// Cold skips the warm pool.
	Cold bool
	// NoGuard skips the Python audit hook so tests can prove the OS layers
	// hold on their own. The gRPC service never sets it.
	NoGuard bool
}

// Result is how a run ended and what it left.
type Result struct {
	Reason          Reason
	ExitCode        int
	Signal          string // the signal that ended Python, if any
	Stdout, Stderr  []byte
	StdoutTruncated bool
	StderrTruncated bool
	Files           []File
	WallTime        time.Duration
	CPUTime         time.Duration
	MaxRSSBytes     int64
	Warm            bool
	Message         string
	// SandboxID and HostUID identify the sandbox; HostUID is unique among
	// live sandboxes, so a test can prove nothing of it is left running.
	SandboxID string
	HostUID   int
}
