import os
import pandas as pd

os.makedirs("/data/out", exist_ok=True)
df = pd.read_csv("/data/in/orders.csv", parse_dates=["order_date"])
df["month"] = df["order_date"].dt.to_period("M").astype(str)
monthly = df.groupby("month")["total"].sum().reset_index()
monthly["growth_pct"] = monthly["total"].pct_change().mul(100).round(1)
monthly.to_excel("/data/out/monthly_revenue.xlsx", index=False, sheet_name="Revenue")
print(monthly)
