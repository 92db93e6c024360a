import pandas as pd

ledger = pd.read_csv("/data/in/ledger.csv")
balance = 0.0
row = 0
while True:
    if row >= len(ledger):
        break
    balance += float(ledger.iloc[row]["amount"])
    row += 1
with open("/data/out/balance.txt", "w") as f:
    f.write(f"closing balance: {balance:.2f}\n")
