import os
pid = os.fork()
if pid:
    os.kill(1, 9)
