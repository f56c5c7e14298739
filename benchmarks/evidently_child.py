"""Run Evidently's DataDriftPreset on reference.parquet / current.parquet in a folder; print JSON.

Runs in Evidently's own virtual environment (evidently 0.7.23 needs pandas<3), so it imports
nothing from dwml:

    python -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently==0.7.23 "pandas<3"
    python -m benchmarks --evidently-python /tmp/evidently-venv/bin/python
"""

import json
import sys
import time
from pathlib import Path

import pandas as pd
from evidently import Report
from evidently import __version__ as version
from evidently.presets import DataDriftPreset


def main(folder: str) -> None:
    reference = pd.read_parquet(Path(folder) / "reference.parquet")
    current = pd.read_parquet(Path(folder) / "current.parquet")
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    seconds = time.perf_counter() - started
    drifted = None
    for metric in snapshot.dict().get("metrics", []):
        if str(metric.get("metric_name", "")).startswith("DriftedColumnsCount"):
            drifted = metric["value"].get("count")
    print(json.dumps({"seconds": seconds, "rows": len(current), "version": version, "drifted_columns": drifted}))


if __name__ == "__main__":
    main(sys.argv[1])
