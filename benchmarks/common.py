"""What every benchmark shares: timing, the scan floor, the figure record, the machine and versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field

from sqlglot import exp

from dwml_py import sql as sqlmod


@dataclass
class Figure:
    """One measured figure: `seconds` of `what` against `baseline_seconds` of `baseline`, measured
    in the same run. `ratio` = seconds / baseline_seconds (or the figure's own ratio when `ratio_of`
    says otherwise, e.g. throughput or memory); `target` is the bound the ratio must meet
    (`target_op` "<=" or ">="), None when the figure is only reported."""

    bench: str
    name: str
    rows: int | None
    what: str
    seconds: float | None
    baseline: str | None = None
    baseline_seconds: float | None = None
    ratio: float | None = None
    target: float | None = None
    target_op: str = "<="
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.seconds is not None and self.baseline_seconds:
            self.ratio = self.seconds / self.baseline_seconds

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target if self.target_op == "<=" else self.ratio >= self.target

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("seconds", "baseline_seconds"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        if out["ratio"] is not None:
            out["ratio"] = round(out["ratio"], 3)
        out["met"] = self.met
        return out


def timed(func, repeat: int = 3) -> tuple[float, object, list[float]]:
    """(best seconds, last result, every run's seconds). Best-of-N: on a shared machine the
    minimum is the run least disturbed by other work; the spread goes into the JSON as noise."""
    runs, result = [], None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = func()
        runs.append(time.perf_counter() - started)
    return min(runs), result, runs


def spread(runs: list[float]) -> float:
    """Relative spread of repeated timings, (max - min) / median: the noise of a figure."""
    return (max(runs) - min(runs)) / statistics.median(runs) if len(runs) > 1 else 0.0


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status in MB (VmRSS now, VmHWM its peak);
    0 where there is no /proc."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def floor_query(relation: exp.Table, numeric: list[str], strings: list[str]) -> exp.Select:
    """The floor: one full-scan aggregate that touches every column.

    SUM of each numeric column and SUM(LENGTH()) of each string column: the cheapest aggregate that
    must read every value. COUNT/MIN/MAX are no floor: DuckDB answers them from stored column
    statistics without a scan (FIELD-NOTES), and COUNT(string) of a column without NULLs too.
    """
    return exp.select(exp.alias_(exp.Count(this=exp.Star()), "n"),
                      *[exp.Sum(this=sqlmod.column(c)) for c in numeric],
                      *[exp.Sum(this=exp.Length(this=sqlmod.column(c))) for c in strings]).from_(relation)


def hash_scan_query(relation: exp.Table, columns: list[str]) -> exp.Select:
    """SUM(HASH(every column)): a dearer scan that hashes every value, strings included (context only)."""
    return exp.select(exp.Sum(this=exp.func("hash", *[sqlmod.column(c) for c in columns]))).from_(relation)


def machine() -> dict:
    """The machine, the load on it when the run started, and the date."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as handle:
            total_kb = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
        info["memory_gib"] = round(total_kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def versions() -> dict:
    from dwml_py.versions import package_versions

    found = dict(package_versions())
    try:
        import duckdb

        found.setdefault("duckdb", duckdb.__version__)
    except ImportError:
        pass
    return found
