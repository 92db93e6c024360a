import pandas as pd

orders = pd.read_csv("/data/in/orders.csv")
threshold = 500
big = orders.query("total > @threshold and status == 'paid'")
big.to_csv("/data/out/big_paid_orders.csv", index=False)
