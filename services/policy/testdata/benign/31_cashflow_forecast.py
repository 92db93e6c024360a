from datetime import timedelta
import numpy as np
import pandas as pd

hist = pd.read_csv("/data/in/cash.csv", parse_dates=["date"]).set_index("date")
daily = hist["net"].resample("D").sum()
trend = np.polyfit(np.arange(len(daily)), daily.values, 1)
future_idx = pd.date_range(daily.index[-1] + timedelta(days=1), periods=30, freq="D")
forecast = pd.Series(np.polyval(trend, np.arange(len(daily), len(daily) + 30)), index=future_idx)
forecast.to_frame("forecast_net").to_csv("/data/out/cash_forecast.csv")
