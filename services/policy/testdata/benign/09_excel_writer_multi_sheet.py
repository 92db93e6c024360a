import pandas as pd

sales = pd.read_excel("/data/in/sales.xlsx")
with pd.ExcelWriter("/data/out/report.xlsx", engine="openpyxl") as writer:
    sales.to_excel(writer, sheet_name="Raw", index=False)
    sales.groupby("region")["amount"].sum().to_excel(writer, sheet_name="By region")
    sales.groupby("product")["amount"].agg(["count", "sum", "mean"]).to_excel(writer, sheet_name="By product")
