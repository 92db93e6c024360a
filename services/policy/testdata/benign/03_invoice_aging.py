from datetime import date, datetime
import pandas as pd

TODAY = date(2024, 6, 30)
invoices = pd.read_csv("/data/in/invoices.csv")
invoices["due"] = pd.to_datetime(invoices["due_date"]).dt.date
invoices["days_overdue"] = invoices["due"].apply(lambda d: max((TODAY - d).days, 0))

def bucket(days):
    if days == 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    return "60+"

invoices["bucket"] = invoices["days_overdue"].map(bucket)
summary = invoices.pivot_table(index="customer", columns="bucket", values="amount", aggfunc="sum", fill_value=0)
summary.to_csv("/data/out/aging.csv")
print("generated", datetime.now().isoformat())
