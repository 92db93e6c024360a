import openpyxl
wb = openpyxl.load_workbook("/data/in/sales.xlsx")
wb.active["A1"] = "tampered"
wb.save("/data/in/sales.xlsx")
