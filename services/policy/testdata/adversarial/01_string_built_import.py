mod = __import__("o" + "s")
mod.system("id")
