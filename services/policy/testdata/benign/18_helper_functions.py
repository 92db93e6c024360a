import os
import pandas as pd

IN_DIR = "/data/in"
OUT_DIR = "/data/out"


def load(name):
    return pd.read_csv(os.path.join(IN_DIR, name))


def save(df, name):
    df.to_csv(os.path.join(OUT_DIR, name), index=False)


def main():
    products = load("products.csv")
    sales = load("sales.csv")
    joined = sales.merge(products, on="product_id")
    margin = joined.assign(margin=joined["price"] - joined["cost"])
    save(margin, "margins.csv")


if __name__ == "__main__":
    main()
