package sandbox

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The runtime guard on its own: each attempt must fail with the guard's
// own error, naming what was refused.
func TestGuard(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	for _, tc := range []struct {
		name    string
		imports []string
		code    string
		want    string
	}{
		{"import outside the allow-list", []string{"math"}, "import json\n", "import of 'json' is not allowed"},
		{"submodule of a module not allowed", []string{"math"}, "import email.mime.text\n", "import of 'email.mime.text' is not allowed"},
		{"allow-list cannot grant ctypes", []string{"ctypes"}, "import ctypes\n", "import of 'ctypes' is not allowed"},
		{"allow-list cannot grant subprocess", []string{"subprocess"}, "import subprocess\n", "import of 'subprocess' is not allowed"},
		{"import through exec", []string{"math"}, "exec('import json')\n", "import of 'json' is not allowed"},
		{"import through __import__", []string{"math"}, "__import__('json')\n", "import of 'json' is not allowed"},
		{"import through importlib", []string{"importlib"}, "import importlib\nimportlib.import_module('json')\n", "import of 'json' is not allowed"},
		{"code posing as a library", []string{"math"}, "exec(compile('import json', '/usr/lib/python3/dist-packages/x.py', 'exec'))\n", "compiling code that claims to be"},
		{"os.system", []string{"os"}, "import os\nos.system('id')\n", "os.system is not allowed"},
		{"os.system through pandas", []string{"pandas"}, "import pandas\npandas.io.common.os.system('id')\n", "os.system is not allowed"},
		{"exec*", []string{"os"}, "import os\nos.execv('/bin/sh', ['sh'])\n", "os.exec is not allowed"},
		{"posix_spawn", []string{"os"}, "import os\nos.posix_spawn('/bin/sh', ['sh'], {})\n", "os.posix_spawn is not allowed"},
		{"fork", []string{"os"}, "import os\nos.fork()\n", "os.fork is not allowed"},
		{"ctypes through numpy", []string{"numpy"}, "import numpy\nnumpy.ctypeslib.ctypes.CDLL('libc.so.6')\n", "native code (ctypes.dlopen)"},
		{"ctypes handle through numpy", []string{"numpy"}, "import numpy\nnumpy.ctypeslib.ctypes.pythonapi.Py_GetVersion\n", "native code (ctypes.dlsym)"},
		{"socket through urllib", []string{"urllib"}, "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/')\n", "networking (socket."},
		{"write outside /data/out", []string{"math"}, "open('/usr/lib/x.txt', 'w')\n", "writing /usr/lib/x.txt is not allowed"},
		{"write through pandas", []string{"pandas"}, "import pandas\npandas.DataFrame({'a': [1]}).to_csv('/data/in/x.csv')\n", "writing /data/in/x.csv is not allowed"},
		{"write through a .. path", []string{"math"}, "open('/data/out/../evil.txt', 'w')\n", "writing /data/evil.txt is not allowed"},
		{"rename into a read-only place", []string{"os"}, "import os\nopen('a', 'w').close()\nos.rename('a', '/etc/a')\n", "writing /etc/a is not allowed"},
		{"code objects", []string{"math"}, "(lambda: 0).__code__.replace(co_filename='/usr/lib/python3/x.py')\n", "building code objects is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, r, Spec{Code: tc.code, AllowedImports: tc.imports})
			require.Equal(t, Exited, res.Reason, res.Message)
			require.Equal(t, 1, res.ExitCode, "%s", res.Stdout)
			require.Contains(t, string(res.Stderr), tc.want)
		})
	}
}

// Allowed work still works under the guard: writes under /data/out and
// /tmp, imports on the list, and the libraries' own imports.
func TestGuardAllowsNormalWork(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	code := `import pandas as pd, json, math
df = pd.DataFrame({"x": [1, 2, 3]})
df.to_csv("/tmp/t.csv", index=False)
df2 = pd.read_csv("/tmp/t.csv")
df2.to_json("out.json")
with open("/data/out/sum.txt", "w") as f:
    f.write(str(int(df2.x.sum())))
print(json.dumps({"pi": round(math.pi, 2)}))
`
	res := run(t, r, Spec{Code: code, AllowedImports: []string{"pandas", "json", "math"}})
	require.Equal(t, Exited, res.Reason, res.Message)
	require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	require.Equal(t, "{\"pi\": 3.14}\n", string(res.Stdout))
	require.Len(t, res.Files, 2)
	require.Equal(t, "out.json", res.Files[0].Name)
	require.Equal(t, "6", string(res.Files[1].Content))
}
