import json
import pandas as pd

df = pd.read_csv("/data/in/sales.csv")
summary = {
    "rows": int(len(df)),
    "total_revenue": float(df["amount"].sum()),
    "by_product": df.groupby("product")["amount"].sum().round(2).to_dict(),
}
with open("/data/out/summary.json", "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2)
print(json.dumps(summary, indent=2))
