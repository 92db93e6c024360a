import statistics
import csv

values = []
with open("/data/in/order_values.csv") as f:
    reader = csv.reader(f)
    next(reader)
    for row in reader:
        values.append(float(row[1]))

report = {
    "mean": statistics.mean(values),
    "median": statistics.median(values),
    "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
}
with open("/data/out/stats.txt", "w") as out:
    for k, v in report.items():
        out.write(f"{k}: {v:.2f}\n")
