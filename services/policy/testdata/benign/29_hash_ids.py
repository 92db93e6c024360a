import hashlib
import pandas as pd

people = pd.read_csv("/data/in/people.csv")
people["person_key"] = people["email"].str.lower().map(lambda e: hashlib.sha256(e.encode()).hexdigest()[:16])
people.drop(columns=["email", "phone"]).to_csv("/data/out/people_pseudonymised.csv", index=False)
