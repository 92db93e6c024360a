// Package tsoracle parses Python with tree-sitter (the C library and the
// tree-sitter-python v0.23.6 grammar, through cgo) and returns the syntax
// tree in a neutral form: an arena of nodes with their type and field names.
// The policy analyser's own parser is tested against it; only tests import
// it, and without cgo the package is empty.
package tsoracle
