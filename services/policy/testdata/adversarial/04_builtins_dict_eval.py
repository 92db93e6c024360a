f = __builtins__.__dict__["ev" "al"]
f("1+1")
