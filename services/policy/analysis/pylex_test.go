package analysis

import "testing"

// TestKeyword checks the keyword switch against Python 3.11's keyword list
// and names that are near misses.
func TestKeyword(t *testing.T) {
	want := map[string]tokKind{
		"False": tFalse, "None": tNone, "True": tTrue, "and": tAnd, "as": tAs, "assert": tAssert, "async": tAsync,
		"await": tAwait, "break": tBreak, "class": tClass, "continue": tContinue, "def": tDef, "del": tDel,
		"elif": tElif, "else": tElse, "except": tExcept, "finally": tFinally, "for": tFor, "from": tFrom,
		"global": tGlobal, "if": tIf, "import": tImport, "in": tIn, "is": tIs, "lambda": tLambda,
		"nonlocal": tNonlocal, "not": tNot, "or": tOr, "pass": tPass, "raise": tRaise, "return": tReturn,
		"try": tTry, "while": tWhile, "with": tWith, "yield": tYield,
	}
	for kw, k := range want {
		if got := keyword([]byte(kw)); got != k {
			t.Errorf("keyword(%q) = %d, want %d", kw, got, k)
		}
		// every prefix, extension and case change is a plain name
		for _, s := range []string{kw[:len(kw)-1], kw + "_", kw + "s", "_" + kw, string(kw[0]^0x20) + kw[1:]} {
			if _, isKw := want[s]; isKw {
				continue
			}
			if got := keyword([]byte(s)); got != tName {
				t.Errorf("keyword(%q) = %d, want a name", s, got)
			}
		}
	}
	for _, s := range []string{"", "i", "ix", "match", "case", "type", "print", "exec", "_", "self", "id"} {
		if got := keyword([]byte(s)); got != tName {
			t.Errorf("keyword(%q) = %d, want a name", s, got)
		}
	}
}
