import csv
from collections import defaultdict
from decimal import Decimal

totals = defaultdict(Decimal)
with open("/data/in/expenses.csv", newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        totals[row["category"]] += Decimal(row["amount"])

with open("/data/out/expense_totals.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["category", "total"])
    for category, total in sorted(totals.items()):
        writer.writerow([category, f"{total:.2f}"])
print(f"{len(totals)} categories")
