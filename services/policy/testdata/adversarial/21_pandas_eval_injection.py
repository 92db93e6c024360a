import pandas as pd
expr = open("/data/in/formula.txt").read()
result = pd.eval(expr)
