package analysis

import (
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveMatch is nameList.match without the literal-prefix shortcut.
func naiveMatch(list []string, name string) string {
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		p := name[:i]
		for _, pat := range list {
			if !isGlob(pat) && pat == p {
				return pat
			}
		}
		for _, pat := range list {
			if ok, _ := path.Match(pat, p); isGlob(pat) && ok {
				return pat
			}
		}
	}
	return ""
}

// TestNameMatching checks the built-in list index and the glob shortcut
// against plain path.Match over every prefix.
func TestNameMatching(t *testing.T) {
	t.Parallel()
	lists := map[builtinLists][]string{
		onDynamicImport: dynamicImportNames, onDynamicCode: dynamicCodeNames, onIntrospection: introspectionNames,
		onCodeObjects: codeObjectNames, onSystem: systemNames, onDeserialize: deserializeNames,
	}
	user := []string{"os.chroot", "shutil.make_*", "re.[a-c]*", "a\\*b", "x.[", "os.path.?oin", "*.system", "requests.post"}
	var names []string
	for _, l := range append([][]string{user}, dynamicImportNames, dynamicCodeNames, introspectionNames,
		codeObjectNames, systemNames, deserializeNames) {
		for _, n := range l {
			names = append(names, n, n+".x", strings.ReplaceAll(n, "*", "abc"), strings.ReplaceAll(n, "*", ""),
				strings.ReplaceAll(n, "?", "Z"), "m."+n, strings.TrimSuffix(n, "*")+"/x.y")
		}
	}
	names = append(names, "", ".", "os.", "os..system", "re.b", "re.d", "a*b", "x.[", "os.path.join", "pandas.read_csv",
		"os.setuid", "os.set_blocking", "os.execvpe", "code", "codeop.x", "foo.system", "a/b.system")
	userList := newNameList(user)
	for _, n := range names {
		on := builtinIndex.lists(n)
		for bit, l := range lists {
			require.Equal(t, naiveMatch(l, n) != "", on&bit != 0, "%q on list %v", n, l)
		}
		require.Equal(t, naiveMatch(user, n), userList.match(n), "%q", n)
	}
}

// TestNameSetShapes checks what isEscapeName and isFrameAttr rely on to
// skip their look-ups: escape names are dunders, frame attributes have an
// underscore.
func TestNameSetShapes(t *testing.T) {
	t.Parallel()
	for n := range escapeNames {
		require.True(t, isDunder(n), n)
		require.True(t, isEscapeName(n), n)
	}
	for n := range frameAttrs {
		require.Contains(t, n, "_")
		require.True(t, isFrameAttr(n), n)
	}
	require.False(t, isEscapeName("__init__"))
	require.False(t, isFrameAttr("system"))
}
