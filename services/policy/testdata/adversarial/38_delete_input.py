import os
os.remove("/data/in/sales.csv")
