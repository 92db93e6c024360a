// Package orchestrator drives Airlock runs through the pipeline — generate,
// check, approve, execute — with every transition stored first, so a run
// survives a restart of the process that drives it.
package orchestrator

import (
	"embed"
	"errors"
	"io/fs"

	"github.com/airlockhq/airlock/pkg/database"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations are the orchestrator's schema migrations.
func Migrations() database.Migrations {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return database.Migrations{Component: "orchestrator", FS: sub}
}

// Sentinel errors of the orchestrator's domain; the gRPC handlers map them to codes.
var (
	// ErrNotFound is a run or file that does not exist or that the caller may not see.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a state change that lost a race with another change.
	ErrConflict = errors.New("run changed concurrently")
	// ErrFinished is a change asked of a run that has already ended.
	ErrFinished = errors.New("run has already ended")
	// ErrTooLarge is an uploaded file past its size limit.
	ErrTooLarge = errors.New("too large")
	// ErrInvalid is a request that breaks a rule of its own; it wraps a FieldError.
	ErrInvalid = errors.New("invalid request")
)

// FieldError names the request field at fault.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }
