import pandas as pd
df = pd.read_csv("/data/in/sales.csv")
df.query("@df.__class__.__init__.__globals__ == 1", engine="python")
