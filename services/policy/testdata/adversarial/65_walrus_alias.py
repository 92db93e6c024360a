import os
if (s := os.popen):
    s("id").read()
