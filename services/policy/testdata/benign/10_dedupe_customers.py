import pandas as pd

customers = pd.read_csv("/data/in/customers.csv", dtype={"phone": str})
customers["email"] = customers["email"].str.strip().str.lower()
deduped = customers.sort_values("updated_at").drop_duplicates("email", keep="last")
removed = len(customers) - len(deduped)
deduped.to_csv("/data/out/customers_clean.csv", index=False)
print(f"removed {removed} duplicate rows")
