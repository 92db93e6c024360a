import sys
import pandas as pd

df = pd.read_csv("/data/in/leads.csv")
if df.empty:
    print("no leads to process")
    sys.exit(0)
df["score"] = df["visits"] * 2 + df["emails_opened"]
df.sort_values("score", ascending=False).to_csv("/data/out/leads_scored.csv", index=False)
