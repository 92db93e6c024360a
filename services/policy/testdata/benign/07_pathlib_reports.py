from pathlib import Path
import pandas as pd

IN = Path("/data/in")
OUT = Path("/data/out")
OUT.mkdir(parents=True, exist_ok=True)

for csv_path in IN.glob("*.csv"):
    df = pd.read_csv(csv_path)
    described = df.describe(include="all")
    described.to_csv(OUT / f"{csv_path.stem}_profile.csv")
(OUT / "README.txt").write_text("Profiles of every input CSV.\n")
