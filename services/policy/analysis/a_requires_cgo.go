//go:build !cgo

package analysis

// The analyser parses Python with tree-sitter, a C library, so it needs
// cgo: build with CGO_ENABLED=1 and a C compiler (gcc). The undefined name
// below turns a cgo-less build into an error that says so.
var _ = policyAnalysisNeedsCgo_BuildWithCGO_ENABLED_1
