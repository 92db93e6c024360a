from dataclasses import dataclass, asdict
from typing import List
import csv
import json


@dataclass
class Employee:
    name: str
    department: str
    salary: float


def read_employees(path: str) -> List[Employee]:
    with open(path, newline="") as f:
        return [Employee(r["name"], r["department"], float(r["salary"])) for r in csv.DictReader(f)]


staff = read_employees("/data/in/staff.csv")
by_dept = {}
for e in staff:
    by_dept.setdefault(e.department, []).append(asdict(e))
with open("/data/out/staff_by_department.json", "w") as f:
    json.dump(by_dept, f, indent=2)
