import logging
import pandas as pd

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("pipeline")


class Pipeline:
    def __init__(self, source, target):
        self.source = source
        self.target = target

    def run(self):
        df = pd.read_csv(self.source)
        log.info("loaded %d rows", len(df))
        df = df.dropna(subset=["customer_id"])
        df["amount"] = df["amount"].clip(lower=0)
        df.to_csv(self.target, index=False)
        log.info("wrote %s", self.target)

    def __repr__(self):
        return f"Pipeline({self.source!r})"


Pipeline("/data/in/payments.csv", "/data/out/payments_clean.csv").run()
