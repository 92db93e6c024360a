# Airlock sandbox bootstrap: runs inside bubblewrap as `python3 -I -S -B`.
# It reads one request line from stdin (limits, guard switch, import
# allow-list; the code itself is /data/code/main.py, written by the host),
# lowers the rlimits to the request's, installs the runtime guard (a PEP 578
# audit hook) and runs the code. In warm mode it imports pandas, numpy and
# openpyxl first and then waits on stdin, so a pre-started sandbox is ready.
# It imports as little as it can: every module costs the cold path time.
# -S skips the site module's start-up: no .pth file or sitecustomize runs
# code before the guard (and none costs the start-up its imports); _site
# below puts the site-packages directories on sys.path and the exit and quit
# builtins in place, which is all the code sees of it.
import sys

USER_FILE = "/data/code/main.py"


def _site():
    import os
    import site  # under -S, importing it runs nothing

    for d in site.getsitepackages():
        if d not in sys.path and os.path.isdir(d):
            sys.path.append(d)
    site.setquit()
    site.setcopyright()
    site.sethelper()


def _main():
    import os, resource, builtins

    _site()
    warm = len(sys.argv) > 1 and sys.argv[1] == "warm"
    if warm:
        import numpy, pandas, openpyxl  # noqa: F401  pre-import before the guard
        os.write(1, b"\0")  # ready: the host reads this byte before handing out the sandbox

    header = sys.stdin.buffer.readline()
    if not header:
        os._exit(0)  # the pool dropped this sandbox unused
    # "key=value key=value ...\n"; imports is a comma-separated list.
    req = dict(kv.split("=", 1) for kv in header.decode("ascii").split())
    # The code's stdin is empty.
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(0, "r", closefd=False)

    used = resource.getrusage(resource.RUSAGE_SELF)
    for name, res, extra in (
        ("cpu", resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime) + 1),
        ("nofile", resource.RLIMIT_NOFILE, 0),
        ("fsize", resource.RLIMIT_FSIZE, 0),
        ("as", resource.RLIMIT_AS, 0),
    ):
        v = int(req.get(name, "0"))
        if v > 0:
            soft, hard = resource.getrlimit(res)
            v += extra
            if hard != resource.RLIM_INFINITY:
                v = min(v, hard)
            # CPU: soft sends SIGXCPU, hard one second later SIGKILL.
            resource.setrlimit(res, (v, v + 1 if res == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or v + 1 <= hard) else v))

    with open(USER_FILE, "rb") as f:
        source = f.read()
    allowed = frozenset(m for m in req.get("imports", "").split(",") if m) - _ALWAYS_DENIED
    if req.get("guard") != "0":
        _install_guard(USER_FILE, allowed)

    os.chdir("/data/out")
    compiled = compile(source, USER_FILE, "exec", dont_inherit=True)
    g = {"__name__": "__main__", "__file__": USER_FILE, "__builtins__": builtins}
    del req, source, header
    rc = 0
    try:
        exec(compiled, g)
    except SystemExit as e:
        if e.code is None:
            rc = 0
        elif isinstance(e.code, int):
            rc = e.code
        else:
            try:
                print(e.code, file=sys.stderr)
            except BaseException:
                pass
            rc = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        rc = 1
    # Exit without the interpreter's finalization, which with pandas loaded
    # costs tens of milliseconds. Dropping the code's globals first closes
    # (and so flushes) files it left open; a file caught in a reference cycle
    # is not flushed, which a full collection would cost too much to catch.
    try:
        g.clear()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(rc & 0xFF if rc >= 0 else 1)


# Modules the code may never import, whatever the allow-list says.
_ALWAYS_DENIED = frozenset({
    "ctypes", "_ctypes", "cffi", "subprocess", "_posixsubprocess", "socket", "_socket",
    "ssl", "_ssl", "multiprocessing", "_multiprocessing", "pty", "gc", "_testcapi",
    "_testinternalcapi", "_xxsubinterpreters", "_xxinterpchannels",
})

_WRITE_FLAGS = 0


def _install_guard(user_file, allowed):
    import os
    import posixpath

    global _WRITE_FLAGS
    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    write_flags = _WRITE_FLAGS
    getframe = sys._getframe
    realpath = posixpath.realpath
    fspath = os.fspath
    trusted_prefixes = ("/usr/lib/python3", "<frozen ")
    # Frames that only pass an import along: the import machinery and this
    # file's __import__ wrappers.
    import_frames = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>",
                     "/usr/lib/python3.11/importlib/__init__.py", "/airlock/bootstrap.py")
    writable = ("/data/out", "/tmp")
    spawn_events = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                    "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.spawn", "sys.addaudithook",
                    "os.startfile", "_posixsubprocess", "cpython.remote_debugger_script")
    path_events = {"os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,),
                   "os.symlink": (1,), "os.link": (1,), "os.chmod": (0,), "os.chown": (0,),
                   "os.truncate": (0,), "os.utime": (0,), "os.chflags": (0,), "os.mkfifo": (0,),
                   "os.mknod": (0,), "shutil.copyfile": (1,), "shutil.make_archive": (0,)}

    def untrusted(fn):
        return not fn.startswith(trusted_prefixes)

    def frame(depth):
        # Called from C with no Python frame left (traceback display at
        # exit, say), there is no caller: nothing the code controls.
        try:
            return getframe(depth + 1)
        except ValueError:
            return None

    def caller():
        # The innermost frame outside this hook and the import machinery.
        f = frame(2)
        while f is not None and f.f_code.co_filename in import_frames:
            f = f.f_back
        return f

    def deny(what):
        raise PermissionError("airlock sandbox: " + what + " is not allowed")

    def check_write(path, flags_or_mode):
        if isinstance(path, int):
            return
        if isinstance(flags_or_mode, str):
            writing = any(c in flags_or_mode for c in "wax+")
        else:
            writing = bool((flags_or_mode or 0) & write_flags)
        if writing:
            p = realpath(fspath(path))
            if isinstance(p, bytes):
                p = p.decode("utf-8", "surrogateescape")
            if not any(p == w or p.startswith(w + "/") for w in writable):
                deny("writing " + p)

    def hook(event, args):
        if event == "import":
            name = args[0]
            f = caller()
            if f is not None and untrusted(f.f_code.co_filename):
                top = name.partition(".")[0]
                if top not in allowed:
                    raise ImportError("airlock sandbox: import of '" + name + "' is not allowed", name=name)
        elif event == "open":
            path, mode, flags = args
            if path is None:
                return
            check_write(path, mode if mode is not None else flags)
        elif event.startswith(spawn_events):
            deny(event)
        elif event.startswith("socket."):
            deny("networking (" + event + ")")
        elif event.startswith("ctypes."):
            if event == "ctypes.dlopen" and args and args[0] is None:
                f = caller()
                if f is not None and not untrusted(f.f_code.co_filename):
                    return  # ctypes' own import-time PyDLL(None)
            deny("native code (" + event + ")")
        elif event in path_events:
            for i in path_events[event]:
                if i < len(args) and args[i] is not None and not isinstance(args[i], int):
                    check_write(args[i], "w")
        elif event in ("compile", "code.__new__", "exec"):
            f = frame(1)
            if f is not None and untrusted(f.f_code.co_filename):
                if event == "compile":
                    fn = args[1]
                    if isinstance(fn, bytes):
                        fn = fn.decode("utf-8", "replace")
                    if isinstance(fn, str) and not untrusted(fn):
                        deny("compiling code that claims to be " + fn)
                elif event == "code.__new__":
                    deny("building code objects")

    sys.addaudithook(hook)

    # The "import" audit event fires only when a module is loaded, not when
    # it is already in sys.modules (json, re, os... after startup or the warm
    # imports), so import statements are checked at __import__ as well, and
    # importlib.import_module for good measure.
    import builtins
    import importlib

    orig_import = builtins.__import__
    orig_import_module = importlib.import_module

    def check(name, f):
        if f is not None and untrusted(f.f_code.co_filename):
            if name.partition(".")[0] not in allowed:
                raise ImportError("airlock sandbox: import of '" + name + "' is not allowed", name=name)

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            check(name, frame(1))
        return orig_import(name, globals, locals, fromlist, level)

    def guarded_import_module(name, package=None):
        if not name.startswith("."):
            check(name, frame(1))
        return orig_import_module(name, package)

    builtins.__import__ = guarded_import
    importlib.import_module = guarded_import_module


_main()
