from pathlib import Path
Path("/data/in/customers.csv").unlink()
