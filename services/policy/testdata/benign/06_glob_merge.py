import glob
import os
import pandas as pd

frames = []
for path in sorted(glob.glob("/data/in/*.csv")):
    part = pd.read_csv(path)
    part["source_file"] = os.path.basename(path)
    frames.append(part)
combined = pd.concat(frames, ignore_index=True)
combined.to_csv(os.path.join("/data/out", "combined.csv"), index=False)
print(combined.shape)
