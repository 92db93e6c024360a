import numpy as np
import pandas as pd

tx = pd.read_csv("/data/in/transactions.csv")
q1, q3 = np.percentile(tx["amount"], [25, 75])
iqr = q3 - q1
tx["outlier"] = (tx["amount"] < q1 - 1.5 * iqr) | (tx["amount"] > q3 + 1.5 * iqr)
tx[tx["outlier"]].to_csv("/data/out/outliers.csv", index=False)
print(tx["outlier"].value_counts())
