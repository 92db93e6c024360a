import pandas as pd
getattr(pd, "\x5f\x5floader\x5f\x5f")
