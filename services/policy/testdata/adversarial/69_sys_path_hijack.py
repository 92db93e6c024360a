import sys
with open("/tmp/pandas_helpers.py", "w") as f:
    f.write("import os\nos.system('id')\n")
sys.path.insert(0, "/tmp")
import pandas_helpers
