import glob
import io
import os
import sys
import pandas as pd

for path in glob.glob("/data/in/*.csv"):
    df = pd.read_csv(path)
    target = path.replace("/data/in/", "/data/out/").replace(".csv", ".xlsx")
    df.to_excel(os.path.join("/data/out", os.path.basename(target)), index=False)

preview = io.StringIO()
df.head().to_csv(preview, index=False)
print(preview.getvalue())
df.describe().to_csv(sys.stdout)
