import os
import csv

rows = []
for root, dirs, files in os.walk("/data/in"):
    for name in files:
        full = os.path.join(root, name)
        rows.append((name, os.path.getsize(full)))
with open("/data/out/file_inventory.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "bytes"])
    w.writerows(rows)
