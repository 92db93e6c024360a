import pandas as pd
df = pd.read_csv("/data/in/sales.csv")
flt = df.columns[0] + " > 0"
df.query(flt).to_csv("/data/out/filtered.csv")
