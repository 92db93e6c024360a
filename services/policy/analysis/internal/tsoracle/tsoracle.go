package tsoracle

/*
#include <stdlib.h>
#include "tsbridge.h"
*/
import "C"

import (
	"errors"
	"runtime"
	"sync"
	"time"
	"unsafe"

	sitter "github.com/tree-sitter/go-tree-sitter"
	python "github.com/tree-sitter/tree-sitter-python/bindings/go"
)

// Node is one syntax node. Type and Field index Grammar's tables.
type Node struct {
	Sym         uint16 // index into Grammar.Types
	Field       uint16 // index into Grammar.Fields; 0 is none
	Missing     bool
	Start, End  uint32
	Parent      int32
	FirstChild  int32
	NextSibling int32
}

// Tree is a parse: nodes in preorder (index 0 is the root).
type Tree struct {
	Nodes     []Node
	HasError  bool
	Truncated bool // the node or depth cap stopped the copy
}

// Grammar names the symbols and fields of the Python grammar.
type Grammar struct {
	Types  []string // by symbol id; 0xFFFF is "ERROR"
	Named  []bool
	Fields []string // by field id; 0 is ""
}

// ErrCancelled reports a parse stopped by its time limit.
var ErrCancelled = errors.New("parse cancelled: time limit reached")

var (
	grammarOnce sync.Once
	pyGrammar   Grammar
	parsers     = make(chan unsafe.Pointer, 4*runtime.GOMAXPROCS(0))
)

// Python returns the grammar's name tables, built once.
func Python() *Grammar {
	grammarOnce.Do(func() {
		C.al_use_libc_allocator()
		lang := sitter.NewLanguage(python.Language())
		pyGrammar.Types = make([]string, 1<<16)
		pyGrammar.Named = make([]bool, 1<<16)
		for id := uint32(0); id < lang.NodeKindCount(); id++ {
			pyGrammar.Types[id] = lang.NodeKindForId(uint16(id))
			pyGrammar.Named[id] = lang.NodeKindIsNamed(uint16(id))
		}
		pyGrammar.Types[0xFFFF] = "ERROR"
		pyGrammar.Named[0xFFFF] = true
		pyGrammar.Fields = make([]string, lang.FieldCount()+1)
		for id := uint32(1); id <= lang.FieldCount(); id++ {
			pyGrammar.Fields[id] = lang.FieldNameForId(uint16(id))
		}
	})
	return &pyGrammar
}

func getParser() unsafe.Pointer {
	select {
	case p := <-parsers:
		return p
	default:
	}
	p := C.al_parser_new(python.Language())
	if p == nil {
		panic("tree-sitter: cannot load the Python grammar") // a build bug: ABI mismatch
	}
	return p
}

func putParser(p unsafe.Pointer) {
	select {
	case parsers <- p:
	default:
		C.al_parser_delete(p)
	}
}

// Parse runs tree-sitter over src and copies the tree out in one cgo call,
// stopping after maxNodes nodes or below maxDepth levels (Truncated), or
// with ErrCancelled when timeout passes.
func Parse(src []byte, timeout time.Duration, maxNodes, maxDepth int) (*Tree, error) {
	Python()
	if timeout <= 0 {
		return nil, ErrCancelled
	}
	p := getParser()
	defer putParser(p)
	buf := src
	if len(buf) == 0 {
		buf = []byte{0}
	}
	r := C.al_parse(p, (*C.char)(unsafe.Pointer(&buf[0])), C.uint32_t(len(src)), C.int64_t(timeout),
		C.int32_t(maxNodes), C.int32_t(maxDepth))
	runtime.KeepAlive(buf)
	if r.cancelled != 0 {
		return nil, ErrCancelled
	}
	defer C.free(unsafe.Pointer(r.nodes))
	cn := unsafe.Slice(r.nodes, int(r.count))
	t := &Tree{HasError: r.has_error != 0, Truncated: r.truncated != 0, Nodes: make([]Node, len(cn))}
	for i := range cn {
		c := &cn[i]
		nd := Node{Sym: uint16(c.symbol), Field: uint16(c.field), Missing: c.missing != 0,
			Start: uint32(c.start), End: uint32(c.end), Parent: int32(c.parent),
			FirstChild: int32(c.first_child), NextSibling: int32(c.next_sibling)}
		if nd.End > uint32(len(src)) {
			nd.End = uint32(len(src))
		}
		if nd.Start > nd.End {
			nd.Start = nd.End
		}
		t.Nodes[i] = nd
	}
	return t, nil
}
