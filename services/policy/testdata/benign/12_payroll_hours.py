import pandas as pd
import numpy as np

hours = pd.read_csv("/data/in/timesheets.csv", parse_dates=["date"])
hours["week"] = hours["date"].dt.isocalendar().week
weekly = hours.groupby(["employee", "week"])["hours"].sum().reset_index()
weekly["overtime"] = np.where(weekly["hours"] > 40, weekly["hours"] - 40, 0)
weekly.to_csv("/data/out/weekly_hours.csv", index=False)
