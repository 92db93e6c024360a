from openpyxl import Workbook
import csv

wb = Workbook()
ws = wb.active
ws.title = "Customers"
with open("/data/in/customers.csv", newline="") as f:
    for row in csv.reader(f):
        ws.append(row)
ws2 = wb.create_sheet("Notes")
ws2["A1"] = "Exported from customers.csv"
wb.save("/data/out/customers.xlsx")
