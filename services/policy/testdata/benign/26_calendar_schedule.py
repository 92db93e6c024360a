import calendar
from datetime import date
import pandas as pd

year, month = 2024, 7
days = calendar.monthrange(year, month)[1]
staff = pd.read_csv("/data/in/staff.csv")["name"].tolist()
rows = []
for day in range(1, days + 1):
    d = date(year, month, day)
    if d.weekday() < 5:
        rows.append({"date": d.isoformat(), "on_call": staff[day % len(staff)]})
pd.DataFrame(rows).to_csv("/data/out/on_call_july.csv", index=False)
