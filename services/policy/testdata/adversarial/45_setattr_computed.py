import pandas as pd
name = input()
setattr(pd, name, print)
