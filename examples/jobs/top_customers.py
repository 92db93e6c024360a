# Top 10 customers by revenue in each region, with names from customers.csv,
# and each region's revenue against its quarterly target.
# Inputs: /data/in/sales.xlsx (sheets Orders, Targets), /data/in/customers.csv.
import pandas as pd

orders = pd.read_excel("/data/in/sales.xlsx", sheet_name="Orders")
targets = pd.read_excel("/data/in/sales.xlsx", sheet_name="Targets")
customers = pd.read_csv("/data/in/customers.csv")

per_customer = (
    orders.groupby(["region", "customer_id"], as_index=False)["revenue"].sum()
    .merge(customers[["customer_id", "name", "segment"]], on="customer_id", how="left")
    .sort_values(["region", "revenue"], ascending=[True, False])
)
top = per_customer.groupby("region").head(10).reset_index(drop=True)
top["rank"] = top.groupby("region").cumcount() + 1
top = top[["region", "rank", "customer_id", "name", "segment", "revenue"]]
top.to_csv("/data/out/top_customers_by_region.csv", index=False)

orders["quarter"] = pd.to_datetime(orders["order_date"]).dt.to_period("Q").astype(str).str.replace("Q", "-Q")
actual = orders.groupby(["region", "quarter"], as_index=False)["revenue"].sum()
summary = targets.merge(actual, on=["region", "quarter"], how="left").fillna({"revenue": 0})
summary["vs_target_pct"] = (100 * summary["revenue"] / summary["revenue_target"]).round(1)
with pd.ExcelWriter("/data/out/region_summary.xlsx", engine="openpyxl") as xw:
    summary.to_excel(xw, sheet_name="Revenue vs target", index=False)
    top.to_excel(xw, sheet_name="Top customers", index=False)

print("Revenue by region:")
print(orders.groupby("region")["revenue"].sum().round(2).to_string())
print()
print("Number one customer per region:")
print(top[top["rank"] == 1][["region", "name", "revenue"]].to_string(index=False))
