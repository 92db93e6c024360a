import pandas as pd
df = pd.DataFrame()
template = "{0.__class__.__init__}"
print(template.format(df))
