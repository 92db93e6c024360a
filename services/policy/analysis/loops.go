package analysis

import (
	"strconv"
	"strings"
)

func (w *walker) whileLoop(n int32) {
	t := w.t
	if constTrue(w, t.child(n, fCondition)) && !w.hasExit(t.child(n, fBody)) {
		w.f.Loops = append(w.f.Loops, Loop{Span: w.span(n), Reason: "the loop condition is always true and nothing breaks out"})
	}
}

func constTrue(w *walker, n int32) bool {
	t := w.t
	switch t.kindOf(n) {
	case kTrue:
		return true
	case kInteger:
		v, err := strconv.ParseInt(strings.ReplaceAll(w.text(n), "_", ""), 0, 64)
		return err != nil || v != 0
	case kString, kConcatenatedString:
		v := w.value(n)
		return v.Known && v.Text != ""
	case kParenthesized:
		if c := w.soleNamed(n); c >= 0 {
			return constTrue(w, c)
		}
	}
	return false
}

func (w *walker) forLoop(n int32) {
	t := w.t
	right := t.child(n, fRight)
	if t.kindOf(right) != kCall {
		return
	}
	names, _ := w.callee(right)
	pos, kw, _ := w.arguments(t.child(right, fArguments))
	endless := false
	for _, q := range names {
		switch q {
		case "itertools.count", "itertools.cycle":
			endless = true
		case "itertools.repeat":
			_, times := kw.get("times")
			endless = len(pos) == 1 && !times
		case "iter":
			endless = len(pos) == 2
		}
	}
	if endless && !w.hasExit(t.child(n, fBody)) {
		w.f.Loops = append(w.f.Loops, Loop{Span: w.span(n), Reason: "the loop iterates an endless iterator and nothing breaks out"})
	}
}

// hasExit reports whether a loop body can leave the loop: a break of this
// loop, a return, raise or yield, or a call to sys.exit and friends.
func (w *walker) hasExit(body int32) bool {
	if body < 0 {
		return false
	}
	t := w.t
	type item struct {
		n      int32
		loops  int
		nested bool // inside a nested def, lambda or class
	}
	stack := []item{{n: body}}
	for len(stack) > 0 {
		if !w.tick() {
			return true // out of time: the analysis is already incomplete
		}
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		loops, nested := it.loops, it.nested
		switch t.nodes[it.n].kind {
		case kBreak:
			if loops == 0 && !nested {
				return true
			}
		case kReturn, kRaise, kYield:
			if !nested {
				return true
			}
		case kCall:
			if !nested {
				names, _ := w.callee(it.n)
				for _, q := range names {
					switch q {
					case "sys.exit", "exit", "quit", "os._exit", "os.abort":
						return true
					}
				}
			}
		case kFor, kWhile:
			loops++
		case kFunctionDef, kLambda, kClassDef:
			nested = true
		}
		for c := t.nodes[it.n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
			stack = append(stack, item{n: c, loops: loops, nested: nested})
		}
	}
	return false
}
