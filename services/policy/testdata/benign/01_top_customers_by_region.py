import pandas as pd

sales = pd.read_excel("/data/in/sales.xlsx", sheet_name="Sales")
customers = pd.read_csv("/data/in/customers.csv")
merged = sales.merge(customers, on="customer_id", how="left")
merged["revenue"] = merged["quantity"] * merged["unit_price"]
top = (
    merged.groupby(["region", "customer_name"], as_index=False)["revenue"].sum()
    .sort_values(["region", "revenue"], ascending=[True, False])
    .groupby("region")
    .head(10)
)
top.to_csv("/data/out/top_customers_by_region.csv", index=False)
print(top.head(20).to_string())
