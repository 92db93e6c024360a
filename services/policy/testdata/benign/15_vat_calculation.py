from decimal import Decimal, ROUND_HALF_UP
import pandas as pd

RATES = {"standard": Decimal("0.20"), "reduced": Decimal("0.05"), "zero": Decimal("0")}

def vat(amount, rate_name):
    amount = Decimal(str(amount))
    return (amount * RATES[rate_name]).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

lines = pd.read_csv("/data/in/invoice_lines.csv")
lines["vat"] = [vat(a, r) for a, r in zip(lines["net"], lines["vat_rate"])]
lines.to_csv("/data/out/invoice_lines_vat.csv", index=False)
