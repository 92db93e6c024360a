import os
os.rename("/data/in/sales.csv", "/data/out/sales.csv")
