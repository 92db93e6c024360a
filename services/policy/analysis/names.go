package analysis

import (
	"path"
	"strings"
)

// benignDunders are dunder attributes ordinary code uses.
var benignDunders = map[string]bool{}

var (
	dynamicImportNames = []string{"__import__", "importlib", "imp", "pkgutil", "runpy", "zipimport", "__loader__"}
	dynamicCodeNames   = []string{"exec", "eval", "compile", "code.*", "codeop.*", "execfile"}
	introspectionNames = []string{"globals", "vars", "locals", "breakpoint", "sys._getframe", "sys._current_frames",
		"sys.modules", "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.meta_path", "sys.path_hooks",
		"sys.path_importer_cache", "sys.exc_info", "sys.exception", "sys.last_traceback", "gc", "inspect", "threading.settrace",
		"pdb", "__builtins__"}
	codeObjectNames = []string{"types.FunctionType", "types.CodeType", "types.LambdaType", "types.MethodType",
		"types.ModuleType", "types.new_class", "types.FrameType", "types.GeneratorType"}
	systemNames = []string{"os.system", "os.popen", "os.exec*", "os.spawn*", "os.fork", "os.forkpty", "os.kill",
		"os.killpg", "os.posix_spawn", "os.posix_spawnp", "os.startfile", "os.set*id", "os.setgroups", "os.plock",
		"os.register_at_fork", "os.pidfd_open", "os.memfd_create", "os.add_dll_directory", "subprocess", "pty",
		"multiprocessing", "socket", "ctypes", "cffi", "_posixsubprocess", "posix", "nt", "signal.pthread_kill",
		"asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell", "asyncio.subprocess",
		"concurrent.futures.ProcessPoolExecutor", "ssl", "urllib.request", "http.client", "ftplib", "smtplib",
		"telnetlib", "socketserver", "xmlrpc", "webbrowser", "_ctypes", "mmap", "resource", "fcntl", "termios"}
	deserializeNames = []string{"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle",
		"joblib.load", "jsonpickle", "pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load", "yaml.load",
		"torch.load", "copyreg"}
)

// builtinLists says which of the built-in name lists a name is on.
type builtinLists uint8

// The built-in lists, as bits.
const (
	onDynamicImport builtinLists = 1 << iota
	onDynamicCode
	onIntrospection
	onCodeObjects
	onSystem
	onDeserialize
)

// builtinIndex holds every built-in list, so one look-up per dotted prefix
// of a name finds all the lists it is on.
var builtinIndex = newListIndex(map[builtinLists][]string{
	onDynamicImport: dynamicImportNames, onDynamicCode: dynamicCodeNames, onIntrospection: introspectionNames,
	onCodeObjects: codeObjectNames, onSystem: systemNames, onDeserialize: deserializeNames,
})

// listIndex maps names and glob patterns to the lists holding them.
type listIndex struct {
	exact map[string]builtinLists
	globs []indexGlob
}

type indexGlob struct {
	pattern, literal string
	lists            builtinLists
}

func newListIndex(lists map[builtinLists][]string) *listIndex {
	x := &listIndex{exact: map[string]builtinLists{}}
	for bit, names := range lists {
		for _, p := range names {
			if isGlob(p) {
				x.globs = append(x.globs, indexGlob{pattern: p, literal: globLiteral(p), lists: bit})
			} else {
				x.exact[p] |= bit
			}
		}
	}
	return x
}

// lists returns the lists on which name or one of its dotted prefixes is,
// by exact name or glob pattern; nameList.match(name) != "" for a list
// exactly when its bit is set.
func (x *listIndex) lists(name string) builtinLists {
	var on builtinLists
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		p := name[:i]
		on |= x.exact[p]
		for _, g := range x.globs {
			if on&g.lists == 0 && strings.HasPrefix(p, g.literal) {
				if ok, _ := path.Match(g.pattern, p); ok {
					on |= g.lists
				}
			}
		}
	}
	return on
}

func init() {
	for _, n := range strings.Fields(`__init__ __name__ __qualname__ __doc__ __class__ __module__ __file__
		__version__ __str__ __repr__ __len__ __iter__ __next__ __enter__ __exit__ __eq__ __ne__ __lt__ __le__
		__gt__ __ge__ __hash__ __contains__ __getitem__ __setitem__ __delitem__ __post_init__ __annotations__
		__all__ __slots__ __add__ __sub__ __mul__ __truediv__ __floordiv__ __mod__ __neg__ __abs__ __call__
		__bool__ __format__ __fspath__ __main__ __radd__ __iadd__ __round__ __float__ __int__ __new__
		__dataclass_fields__ __match_args__ __sizeof__`) {
		benignDunders[n] = true
	}
}
