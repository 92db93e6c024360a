# One CSV of orders per region and quarter, bundled into a single zip for the
# accountants. The default policy sends this job to REVIEW: shutil.make_archive
# packs files, and an operator should see what leaves in the bundle.
import os
import shutil

import pandas as pd

orders = pd.read_excel("/data/in/sales.xlsx", sheet_name="Orders")
orders["quarter"] = pd.to_datetime(orders["order_date"]).dt.to_period("Q").astype(str)

pack = "/tmp/quarterly_pack"
os.makedirs(pack, exist_ok=True)
for (region, quarter), group in orders.groupby(["region", "quarter"]):
    group.drop(columns="quarter").to_csv(os.path.join(pack, f"{region}_{quarter}.csv"), index=False)

shutil.make_archive("/data/out/quarterly_pack", "zip", pack)
print(f"packed {len(os.listdir(pack))} files, {len(orders)} orders")
