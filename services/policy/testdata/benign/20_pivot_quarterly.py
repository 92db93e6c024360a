import pandas as pd

df = pd.read_excel("/data/in/sales.xlsx", sheet_name=0)
df["date"] = pd.to_datetime(df["date"])
df["quarter"] = df["date"].dt.to_period("Q").astype(str)
pivot = df.pivot_table(index="product", columns="quarter", values="amount", aggfunc="sum", margins=True)
pivot.to_excel("/data/out/quarterly_pivot.xlsx")
