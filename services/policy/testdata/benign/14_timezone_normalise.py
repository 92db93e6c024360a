from zoneinfo import ZoneInfo
import pandas as pd

events = pd.read_csv("/data/in/bookings.csv")
events["start"] = pd.to_datetime(events["start_utc"], utc=True).dt.tz_convert(ZoneInfo("Europe/Berlin"))
events["weekday"] = events["start"].dt.day_name()
events.to_csv("/data/out/bookings_local.csv", index=False)
