import itertools
import pandas as pd

baskets = pd.read_csv("/data/in/baskets.csv")
counts = {}
for _, group in baskets.groupby("order_id"):
    items = sorted(set(group["product"]))
    for a, b in itertools.combinations(items, 2):
        counts[(a, b)] = counts.get((a, b), 0) + 1
pairs = pd.DataFrame([(a, b, n) for (a, b), n in counts.items()], columns=["a", "b", "orders"])
pairs.sort_values("orders", ascending=False).head(50).to_csv("/data/out/product_pairs.csv", index=False)
