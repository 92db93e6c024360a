import openpyxl
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

wb = openpyxl.load_workbook("/data/in/sales.xlsx", read_only=True, data_only=True)
ws = wb.active
rows = list(ws.iter_rows(values_only=True))
header, data = rows[0], rows[1:]

out = openpyxl.Workbook()
sheet = out.active
sheet.title = "Summary"
sheet.append(list(header))
for row in data:
    sheet.append(list(row))
for cell in sheet[1]:
    cell.font = Font(bold=True)
    cell.fill = PatternFill("solid", fgColor="DDDDDD")
for i in range(1, len(header) + 1):
    sheet.column_dimensions[get_column_letter(i)].width = 18
out.save("/data/out/sales_styled.xlsx")
