"""Write the shop's seed CSVs (raw_customers, raw_orders, raw_renewals) into a copy of this project.

    python tests/user_project/make_seeds.py PROJECT_DIR [--customers N]

Deterministic: churn is likelier for customers with few orders and many returns last year, and this
year's spend follows last year's, so both models have something to learn.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

CHANNELS = ("web", "store", "partner", None)
COUNTRIES = ("DE", "FR", "NL", "US")


def write_seeds(project_dir: Path, customers: int = 600, seed: int = 5) -> dict[str, int]:
    """Write seeds/raw_*.csv; returns rows per file."""
    rng = random.Random(seed)
    folder = Path(project_dir) / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    customer_rows, order_rows, renewal_rows = [], [], []
    order_id = 0
    for customer_id in range(1, customers + 1):
        channel = rng.choice(CHANNELS)
        age = rng.randint(18, 80) if rng.random() > 0.1 else None
        customer_rows.append([customer_id, f"Person{customer_id}@Example.com", channel or "", rng.choice(COUNTRIES),
                              "" if age is None else age])
        activity = rng.expovariate(1 / 4)
        last_year = [round(rng.lognormvariate(3.5, 0.6), 2) for _ in range(int(activity))]
        returns = sum(rng.random() < 0.15 for _ in last_year)
        churn_p = 0.75 if not last_year else min(0.9, 0.15 + 0.5 / len(last_year) + 0.12 * returns
                                                  + (0.1 if channel == "partner" else 0.0))
        churned = rng.random() < churn_p
        this_year = [] if churned else [round(a * rng.uniform(0.7, 1.3), 2) for a in last_year or [30.0]]
        for year, amounts in ((2025, last_year), (2026, this_year)):
            for i, amount in enumerate(amounts):
                order_id += 1
                status = "returned" if year == 2025 and i < returns else ("test" if rng.random() < 0.01 else "paid")
                order_rows.append([order_id, customer_id, amount, status, year])
        renewal_rows.append([customer_id, "true" if rng.random() < 0.85 else "false"])
    files = {"raw_customers": (["customer_id", "email", "signup_channel", "country", "age"], customer_rows),
             "raw_orders": (["order_id", "customer_id", "amount", "status", "order_year"], order_rows),
             "raw_renewals": (["customer_id", "renewal_due"], renewal_rows)}
    for name, (header, rows) in files.items():
        with open(folder / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    return {name: len(rows) for name, (_, rows) in files.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project_dir", type=Path)
    parser.add_argument("--customers", type=int, default=600)
    options = parser.parse_args()
    print(write_seeds(options.project_dir, options.customers))
