import pandas as pd
df = pd.read_pickle("/data/in/frame.pkl")
df.to_csv("/data/out/frame.csv")
