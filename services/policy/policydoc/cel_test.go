package policydoc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInspectExpr checks which fact fields an expression is found to read;
// evaluation builds only those, so a field missed here would read as absent.
func TestInspectExpr(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		expr   string
		fields factField
		loops  bool
	}{
		{`fact.name == "input"`, ffName, false},
		{`fact.name == "time.sleep" && fact.literal.size() > 0 && fact.literal[0] && fact.args[0].matches("^[0-9]{3,}")`, ffName | ffLiteral | ffArgs, false},
		{`has(fact.url) && fact.line > 0 && fact.nosuchfield == 1`, ffURL | ffLine, false},
		{`facts.lines > 10`, 0, false},
		{`size(fact) > 2`, allFields, false},
		{`fact["name"] == "x"`, allFields, false},
		{`"name" in fact`, allFields, false},
		{`fact.names.exists(n, n == "x")`, ffNames, true},
		{`fact.exists(k, k == "names")`, allFields, true},
		{`[fact.value].all(fact, fact.size() > 1)`, allFields, true},
		{`fact == {"value": "x"}`, allFields, false},
	} {
		ast, iss := celEnv.Compile(c.expr)
		require.NoError(t, iss.Err(), c.expr)
		fields, loops := inspectExpr(ast.NativeRep())
		require.Equal(t, c.fields, fields, c.expr)
		require.Equal(t, c.loops, loops, c.expr)
	}
}
