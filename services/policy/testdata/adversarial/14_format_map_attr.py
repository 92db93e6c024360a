import pandas as pd
df = pd.DataFrame()
print("{df.__class__.__init__}".format_map({"df": df}))
