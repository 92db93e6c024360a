"""Monthly sales pack: reads the inputs, builds every report, writes them to /data/out."""
import csv
import json
import os
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font

IN_DIR = "/data/in"
OUT_DIR = "/data/out"
REPORT_DATE = date(2024, 6, 30)

def report_by_region(sales):
    """Revenue, orders and average order value by region."""
    grouped = sales.groupby("region", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for region")
        return grouped
    path = os.path.join(OUT_DIR, "by_region.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_product(sales):
    """Revenue, orders and average order value by product."""
    grouped = sales.groupby("product", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for product")
        return grouped
    path = os.path.join(OUT_DIR, "by_product.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_customer(sales):
    """Revenue, orders and average order value by customer."""
    grouped = sales.groupby("customer", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for customer")
        return grouped
    path = os.path.join(OUT_DIR, "by_customer.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_channel(sales):
    """Revenue, orders and average order value by channel."""
    grouped = sales.groupby("channel", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for channel")
        return grouped
    path = os.path.join(OUT_DIR, "by_channel.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_month(sales):
    """Revenue, orders and average order value by month."""
    grouped = sales.groupby("month", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for month")
        return grouped
    path = os.path.join(OUT_DIR, "by_month.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_rep(sales):
    """Revenue, orders and average order value by rep."""
    grouped = sales.groupby("rep", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for rep")
        return grouped
    path = os.path.join(OUT_DIR, "by_rep.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_segment(sales):
    """Revenue, orders and average order value by segment."""
    grouped = sales.groupby("segment", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for segment")
        return grouped
    path = os.path.join(OUT_DIR, "by_segment.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def report_by_country(sales):
    """Revenue, orders and average order value by country."""
    grouped = sales.groupby("country", as_index=False).agg(
        revenue=("revenue", "sum"),
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
    )
    grouped["aov"] = (grouped["revenue"] / grouped["orders"]).round(2)
    grouped["share_pct"] = (100 * grouped["revenue"] / grouped["revenue"].sum()).round(1)
    grouped = grouped.sort_values("revenue", ascending=False)
    top = grouped.head(10)
    if top.empty:
        print("no rows for country")
        return grouped
    path = os.path.join(OUT_DIR, "by_country.csv")
    grouped.to_csv(path, index=False)
    print(f"wrote {len(grouped)} rows to {path}")
    return grouped


def load_sales():
    sales = pd.read_excel(os.path.join(IN_DIR, "sales.xlsx"), sheet_name="Sales")
    customers = pd.read_csv(os.path.join(IN_DIR, "customers.csv"))
    sales = sales.merge(customers, on="customer_id", how="left")
    sales["revenue"] = sales["quantity"] * sales["unit_price"]
    sales["month"] = pd.to_datetime(sales["date"]).dt.to_period("M").astype(str)
    return sales


def write_workbook(tables):
    wb = Workbook()
    wb.remove(wb.active)
    for name, df in tables.items():
        ws = wb.create_sheet(name[:31])
        ws.append(list(df.columns))
        for row in df.itertuples(index=False):
            ws.append([float(v) if isinstance(v, np.floating) else v for v in row])
        for cell in ws[1]:
            cell.font = Font(bold=True)
    wb.save(os.path.join(OUT_DIR, "sales_pack.xlsx"))


def main():
    Path(OUT_DIR).mkdir(parents=True, exist_ok=True)
