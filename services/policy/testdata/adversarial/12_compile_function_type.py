import types
code = compile("import os\nos.system('id')", "<x>", "exec")
fn = types.FunctionType(code, {})
fn()
