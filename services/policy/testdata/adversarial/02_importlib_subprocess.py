import importlib
sp = importlib.import_module("subprocess")
sp.run(["cat", "/etc/passwd"])
