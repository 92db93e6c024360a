package analysis

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testConfig() *Config {
	cfg := DefaultConfig()
	cfg.AllowedImports = []string{"pandas", "numpy", "openpyxl", "os", "csv", "json", "pathlib", "glob", "sys",
		"itertools", "shutil", "tempfile", "time", "types", "operator", "math", "requests"}
	cfg.DeniedCalls = []string{"os.chroot", "requests.post"}
	cfg.ReviewCalls = []string{"time.sleep", "shutil.make_*"}
	return &cfg
}

func check(t *testing.T, cfg *Config, src string) []Finding {
	t.Helper()
	f, err := Analyze(context.Background(), []byte(src), Options{})
	require.NoError(t, err)
	return Check(f, cfg)
}

func ruleIDs(fs []Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.RuleID)
	}
	return ids
}

// TestRules holds, for every built-in rule, code that must trigger it and
// code that must not.
func TestRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rule string
		hits []string
		ok   []string
	}{
		{RuleSyntax,
			[]string{"def f(:\n  pass", "print 'py2'", "x = (1,", "exec 'code'"},
			[]string{"print('py3')", "match x:\n    case 1:\n        pass"}},
		{RuleImport,
			[]string{"import subprocess", "from socket import socket", "import urllib.request", "from . import x", "import pandasx"},
			[]string{"import pandas as pd", "from os import path", "import os.path", "from openpyxl.styles import Font", "from __future__ import annotations"}},
		{RuleDynamicImport,
			[]string{"__import__('os')", "import importlib\nimportlib.import_module('os')", "f = __import__", "__loader__.load_module('os')"},
			[]string{"import os"}},
		{RuleDynamicCode,
			[]string{"exec('1')", "eval(x)", "compile('1', 'f', 'eval')", "e = eval\ne('1')", "import builtins\nbuiltins.exec('1')", "ｅｖａｌ('1')"},
			[]string{"df.eval_model = 1", "def evaluate(x): return x"}},
		{RuleIntrospection,
			[]string{"globals()", "vars(obj)", "locals()", "breakpoint()", "import sys\nsys._getframe(1)", "import sys\nsys.modules['os']", "import sys\nm = sys.modules"},
			[]string{"import sys\nsys.exit(0)", "print(sys.argv)"}},
		{RuleCodeObjects,
			[]string{"import types\ntypes.FunctionType(c, {})", "import types\ntypes.CodeType", "from types import FunctionType"},
			[]string{"import types\ntypes.SimpleNamespace(a=1)"}},
		{RuleReflective,
			[]string{"getattr(obj, name)", "setattr(obj, n, 1)", "delattr(obj, x)", "g = getattr", "import operator\noperator.attrgetter(n)", "getattr(*args)"},
			[]string{"getattr(obj, 'name', None)", "setattr(cfg, 'debug', True)", "hasattr(obj, 'x')"}},
		{RuleEscapeAttr,
			[]string{"().__class__.__bases__[0].__subclasses__()", "f.__globals__", "x.gi_frame.f_globals", "e.__traceback__.tb_frame",
				"getattr(f, '__code__')", "__builtins__['exec']", "object.__getattribute__(o, 'x')"},
			[]string{"class A:\n    def __init__(self):\n        super().__init__()", "print(type(x).__name__)", "if __name__ == '__main__': pass"}},
		{RuleDunderAttr,
			[]string{"x.__sizeof_internal__", "obj.__dir__()"},
			[]string{"self.__class__.__name__", "df.__len__()"}},
		{RuleSuspiciousAttr,
			[]string{"import os\nm = [os][0]\nm.system('id')", "d = {'m': mod}\nd['m'].popen('id')", "f()._getframe()"},
			[]string{"import os\nos.system('id')", "df.groupby('a').sum()"}},
		{RuleEscapeString,
			[]string{"s = '__subclasses__'", "s = '" + strings.Repeat("a", 5000) + "__globals__'", "s = '__glo' + 'bals__'", "s = '\\x5f\\x5fbuiltins\\x5f\\x5f'", "s = 'f_globals'", "s = '__imp' 'ort__'"},
			[]string{"s = '__main__'", "s = 'my_globals'", "s = 'f_globals_count is not a thing'.upper()"}},
		{RuleFormatAttr,
			[]string{"'{0.__class__}'.format(x)", "'{x.y}'.format(x=o)", "tpl = '{0.__class__}'\ntpl.format(x)", "'{0[key]}'.format(d)", "'{a.b}'.format_map(m)"},
			[]string{"'{} {}'.format(a, b)", "'{name:>10}'.format(name=n)", "'{{literal}}'.format()", "f'{x.y}'"}},
		{RuleConfusable,
			[]string{"ｐｒｉｎｔ(1)", "𝐱 = 1"},
			[]string{"x = 1", "s = 'ｐｒｉｎｔ'"}},
		{RuleSystem,
			[]string{"import os\nos.system('id')", "import os\nos.popen('id')", "import os\nos.execv('/bin/sh', [])", "import os\nos.fork()",
				"import os\nos.kill(1, 9)", "import os\nos.spawnl(0, 'x')", "import subprocess\nsubprocess.run(['id'])",
				"import socket\nsocket.socket()", "import ctypes\nctypes.CDLL('x')", "from os import system", "from os import *\nsystem('id')"},
			[]string{"import os\nos.path.join('/data/out', 'x')", "import os\nos.getcwd()", "import os\nos.environ.get('HOME')"}},
		{RuleDeserialize,
			[]string{"import pickle\npickle.loads(b)", "import pandas as pd\npd.read_pickle('/data/in/x.pkl')", "import numpy as np\nnp.load('/data/in/a.npy', allow_pickle=True)",
				"import numpy as np\nnp.load('/data/in/a.npy', allow_pickle=flag)", "import marshal\nmarshal.loads(b)", "import shelve\nshelve.open('/tmp/x')"},
			[]string{"import numpy as np\nnp.load('/data/in/a.npy')", "import numpy as np\nnp.load('/data/in/a.npy', allow_pickle=False)", "import json\njson.loads(s)"}},
		{RulePandasEval,
			[]string{"import pandas as pd\npd.eval(expr)", "df.query(q)", "df.eval(user_text)", "df.query('a.__class__ > 1')", "df.query(expr='@x.__init__')"},
			[]string{"df.query('amount > 100')", "df.query('amount > @limit')", "df.eval('c = a + b')", "model.eval()"}},
		{RuleDeniedCall,
			[]string{"import os\nos.chroot('/')", "import requests\nrequests.post('https://x')", "import requests\nsend = requests.post"},
			[]string{"import requests\nrequests.get('https://example.com')"}},
		{RuleReviewCall,
			[]string{"import time\ntime.sleep(5)", "import shutil\nshutil.make_archive('/data/out/a', 'zip', '/data/out')"},
			[]string{"import time\ntime.time()"}},
		{RuleNetwork,
			[]string{"import pandas as pd\npd.read_csv('http://x.example/a.csv')", "import pandas as pd\nURL = 'https://x/y.json'\npd.read_json(URL)",
				"df.to_csv('s3://bucket/key.csv')", "open('ftp://host/file')"},
			[]string{"print('see https://example.com')", "import pandas as pd\npd.read_csv('/data/in/http.csv')"}},
		{RuleWriteOutside,
			[]string{"open('/etc/passwd', 'w')", "df.to_csv('out.csv')", "import os\nos.makedirs('/data/outside')", "df.to_excel('/data/out/../in2/x.xlsx')",
				"import os\ndf.to_csv(os.path.join('/data/out', '/etc/x'))", "from pathlib import Path\n(Path('/home') / 'u').write_text('x')",
				"import shutil\nshutil.copy('/data/in/a', '/root/a')", "open('/tmp/../etc/x', 'a')", "import io\nio.FileIO('/etc/x', 'w')",
				"import shutil\nshutil.unpack_archive('/data/in/a.zip', '/opt')"},
			[]string{"open('/data/out/a.txt', 'w')", "open('/tmp/scratch', 'w')", "import os\nOUT = '/data/out'\ndf.to_csv(os.path.join(OUT, name))",
				"df.to_csv(f'/data/out/{region}.csv')", "from pathlib import Path\nout = Path('/data/out')\n(out / 'a.csv').write_text('x')",
				"import os\nos.makedirs('/data/out', exist_ok=True)", "df.to_csv()"}},
		{RuleWriteUnknown,
			[]string{"df.to_csv(path)", "open(p, 'w')", "open(name, mode)", "p.write_text('x')", "df.to_csv('/data/o' + name)",
				"import sys\nopen(sys.argv[1], 'w')", "t = '/data/out/a'\nt = input()\ndf.to_csv(t)"},
			[]string{"open(p)", "open(p, 'r')", "s.replace('a', 'b')", "import io\nbuf = io.StringIO()\ndf.to_csv(buf)",
				"import sys\ndf.to_csv(sys.stdout)", "import io\nwith io.BytesIO() as b:\n    wb.save(b)"}},
		{RuleReadOutside,
			[]string{"open('/etc/passwd')", "import pandas as pd\npd.read_csv('sales.csv')", "import glob\nglob.glob('/home/*')", "open('/proc/self/environ', 'rb')"},
			[]string{"open('/data/in/a.csv')", "import pandas as pd\npd.read_csv('/data/in/x.csv')", "import glob\nglob.glob('/data/in/*.xlsx')", "open('/data/out/prev.json')"}},
		{RuleDelete,
			[]string{"import os\nos.remove('/var/log/x')", "import shutil\nshutil.rmtree(d)", "import os\nos.unlink(p)", "p.unlink()"},
			[]string{"import os\nos.remove('/data/out/tmp.csv')", "import os\nos.remove('/tmp/scratch')"}},
		{RuleInputModified,
			[]string{"import os\nos.remove('/data/in/a.csv')", "open('/data/in/a.csv', 'a')", "open('/data/in/a.csv', 'r+')", "wb.save('/data/in/book.xlsx')",
				"import os\nos.rename('/data/in/a', '/data/out/a')", "from pathlib import Path\nPath('/data/in/x.csv').unlink()", "df.to_csv('/data/in/sales.csv')"},
			[]string{"open('/data/in/a.csv')", "import shutil\nshutil.copy('/data/in/a.csv', '/data/out/a.csv')",
				"import glob\nfor f in glob.glob('/data/in/*.csv'):\n    print(f.replace('.csv', '.xlsx'))"}},
		{RuleUnboundedLoop,
			[]string{"while True:\n    pass", "while 1:\n    x = 1", "import itertools\nfor i in itertools.count():\n    print(i)",
				"while True:\n    for x in y:\n        break", "while True:\n    def f():\n        return 1", "for x in iter(int, 1):\n    pass"},
			[]string{"while True:\n    break", "while True:\n    if x:\n        return", "while True:\n    raise StopIteration",
				"import sys\nwhile True:\n    sys.exit(0)", "while n > 0:\n    n -= 1", "def g():\n    while True:\n        yield 1",
				"import itertools\nfor i in itertools.count():\n    if i > 3:\n        break"}},
	}
	covered := map[string]bool{RuleIncomplete: true} // tested in TestAnalyzeLimits
	cfg := testConfig()
	for _, tc := range cases {
		covered[tc.rule] = true
		for _, src := range tc.hits {
			t.Run(tc.rule+"/hit/"+short(src), func(t *testing.T) {
				t.Parallel()
				fs := check(t, cfg, src)
				require.Contains(t, ruleIDs(fs), tc.rule, "code:\n%s", src)
				for _, f := range fs {
					if f.RuleID == tc.rule {
						require.Positive(t, f.Line)
						require.Positive(t, f.Column)
						require.NotEmpty(t, f.Message)
						require.NotEmpty(t, f.FixHint)
					}
				}
			})
		}
		for _, src := range tc.ok {
			t.Run(tc.rule+"/ok/"+short(src), func(t *testing.T) {
				t.Parallel()
				require.NotContains(t, ruleIDs(check(t, cfg, src)), tc.rule, "code:\n%s", src)
			})
		}
	}
	for _, r := range Rules {
		require.True(t, covered[r.ID], "rule %s has no table test", r.ID)
	}
}

func TestActionsOverride(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	src := "import os\nos.remove('/var/x')"
	fs := check(t, cfg, src)
	require.Equal(t, Review, Decide(fs))
	cfg.Actions = map[string]Verdict{RuleDelete: Deny}
	require.Equal(t, Deny, Decide(check(t, cfg, src)))
	cfg.Actions = map[string]Verdict{RuleDelete: Allow}
	require.Empty(t, check(t, cfg, src))
}

func TestFindingPosition(t *testing.T) {
	t.Parallel()
	fs := check(t, testConfig(), "import pandas as pd\n\nx = 1; é = 2; eval('1')\n")
	var f Finding
	for _, x := range fs {
		if x.RuleID == RuleDynamicCode {
			f = x
		}
	}
	require.Equal(t, 3, f.Line)
	require.Equal(t, 15, f.Column, "columns count characters, not bytes")
	require.Equal(t, "eval", f.Snippet)
	require.Equal(t, Deny, f.Action)
	require.Equal(t, Critical, f.Severity)
}

func TestFactsResolveAliases(t *testing.T) {
	t.Parallel()
	src := `import pandas as pd
from openpyxl import load_workbook as lw
import os.path
df = pd.read_csv("/data/in/a.csv", sep=";")
wb = lw("/data/in/b.xlsx")
p = os.path.join("/data/out", "c.csv")
`
	f, err := Analyze(context.Background(), []byte(src), Options{})
	require.NoError(t, err)
	names := map[string]Call{}
	for _, c := range f.Calls {
		names[c.Name] = c
	}
	require.Contains(t, names, "pandas.read_csv")
	require.Contains(t, names, "openpyxl.load_workbook")
	require.Contains(t, names, "os.path.join")
	require.Equal(t, ";", names["pandas.read_csv"].Kwargs["sep"].Text)
	var reads []string
	for _, op := range f.FileOps {
		if op.Kind == FileRead {
			reads = append(reads, op.Path.Text)
		}
	}
	require.Equal(t, []string{"/data/in/a.csv", "/data/in/b.xlsx"}, reads)
	require.Len(t, f.Imports, 3)
	require.Equal(t, "os.path", f.Imports[2].Module)
}

func TestSyntaxErrorLine(t *testing.T) {
	t.Parallel()
	fs := check(t, testConfig(), "x = 1\ny = 2\ndef f(:\n    pass\n")
	require.Equal(t, Deny, Decide(fs))
	require.Equal(t, RuleSyntax, fs[0].RuleID)
	require.Equal(t, 3, fs[0].Line)
}

func TestAnalyzeLimits(t *testing.T) {
	t.Parallel()
	_, err := Analyze(context.Background(), make([]byte, 100), Options{MaxBytes: 10})
	require.ErrorIs(t, err, ErrTooLarge)

	deep := strings.Repeat("(", 600) + "1" + strings.Repeat(")", 600)
	f, err := Analyze(context.Background(), []byte("x = "+deep), Options{})
	require.NoError(t, err)
	require.NotEmpty(t, f.Incomplete)
	require.Contains(t, ruleIDs(Check(f, testConfig())), RuleIncomplete)

	many := strings.Repeat("x = 1\n", 5000)
	f, err = Analyze(context.Background(), []byte(many), Options{MaxNodes: 1000})
	require.NoError(t, err)
	require.NotEmpty(t, f.Incomplete)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, err = Analyze(ctx, []byte(strings.Repeat("y = f(x)\n", 20000)), Options{})
	require.NoError(t, err)
	require.NotEmpty(t, f.Incomplete, "a cancelled analysis must say it is incomplete")

	f, err = Analyze(context.Background(), []byte("x = '\xff'"), Options{})
	require.NoError(t, err)
	require.NotEmpty(t, f.SyntaxErrors)
}

func short(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}
