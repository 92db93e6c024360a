import math
import pandas as pd

stock = pd.read_excel("/data/in/inventory.xlsx")
usage = pd.read_csv("/data/in/daily_usage.csv")
avg = usage.groupby("sku")["units"].mean().rename("avg_daily")
stock = stock.join(avg, on="sku")
LEAD_DAYS = 14
stock["reorder_point"] = (stock["avg_daily"] * LEAD_DAYS).apply(math.ceil)
to_order = stock[stock["on_hand"] < stock["reorder_point"]]
to_order.to_csv("/data/out/reorder.csv", index=False)
print(to_order[["sku", "on_hand", "reorder_point"]])
