import os
import shutil
import tempfile
import pandas as pd

df = pd.read_csv("/data/in/sales.csv")
with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
    staging = os.path.join(tmp, "staging.csv")
    df.to_csv(staging, index=False)
    shutil.copy(staging, "/data/out/sales_copy.csv")
