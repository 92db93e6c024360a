import difflib
import pandas as pd

catalog = pd.read_csv("/data/in/catalog.csv")["name"].tolist()
orders = pd.read_csv("/data/in/order_lines.csv")
orders["matched"] = orders["product_text"].map(
    lambda t: (difflib.get_close_matches(t, catalog, n=1, cutoff=0.6) or [""])[0]
)
orders.to_csv("/data/out/order_lines_matched.csv", index=False)
