import re
import pandas as pd

PHONE = re.compile(r"[^0-9+]")
contacts = pd.read_csv("/data/in/contacts.csv", dtype=str)
contacts["phone"] = contacts["phone"].fillna("").map(lambda p: PHONE.sub("", p))
contacts["postcode"] = contacts["postcode"].str.upper().str.replace(" ", "", regex=False)
contacts.to_csv("/data/out/contacts_clean.csv", index=False)
