"""Predicted wall time and peak memory of a training run before it starts, and the cost gate.

Method ("calibrated power law"): a sample of the real training data is fetched (chosen in the
warehouse, see model_selection.sample_query) and `training.fit` is timed on it at three sizes
(a quarter, a half and all of the sample; the fastest of `repeats` runs, since noise from
other processes only ever adds time). Each algorithm's time is then modelled as

    t(n) = c + a * n^b

with c >= 0 the fixed cost (thread pools, preprocessing set-up), and b searched in a range
fixed per algorithm by its complexity (`EXPONENTS`): a free exponent fitted to three noisy,
overhead-dominated points extrapolates wildly, a clamped one cannot. XGBoost hist and L-BFGS
logistic regression are about linear in rows; a random forest sorts at every node, n log n,
which over one or two decades of n looks like n^1.0-1.2.

Memory: the two smaller sizes are fitted once more under tracemalloc (which slows Python
code, so never timed). Its peak (numpy/pandas copies, the fitted model) is modelled as linear in rows, m0 + k*n.
To that the Arrow data the run holds is added: the fetched table plus its train/holdout copies
(about twice the table; Arrow memory is not seen by tracemalloc). Native allocations inside
XGBoost's and OpenMP's C++ code are not traced either, so `predicted_peak_mb` is the Python +
Arrow part of the peak; measure a real fit the same way to compare.

The estimate is for `train_rows`: the rows `training_set.split` leaves for fitting (computed
from warehouse-side counts, see model_selection.data_characteristics).

The gate: `cost_gate(estimate)` compares with `vars: dwml: cost: {max_seconds, max_memory_mb}`
of dbt_project.yml (or explicit budgets); train_model refuses a run over budget unless overridden.

The gate needs a verdict, not the best estimate, so `estimate_training_cost(..., budget=...)`
first times one fit at the smallest calibration size s and bounds the run from above: with
t(n) = c + a*n^b, c >= 0 and b <= the algorithm's largest exponent b_max, t(n) <= t(s) *
(n/s)^b_max for n >= s, and likewise the traced memory m0 + k*n <= m(s) * n/s. When that bound
is within the budget the gate passes on it (`method` says so, `upper_bound` is true) and the
other calibration fits are skipped: they cost several times the smallest one, and on a busy
machine several times the run's own fit. Only a run whose bound exceeds the budget is calibrated
in full, so a refusal always rests on the full estimate.

The bounding fit runs on one thread (XGBoost's and scikit-learn's pools, OpenMP and BLAS): a
multi-threaded fit of a few thousand rows spends its time in thread barriers, which on a busy
machine wait for cores other processes hold (a demo's gate took 193 s for a 17 s fit that way).
One thread cannot be slowed by that, and the run's own fit on all cores is no slower than it on
one, so the bound stays a bound. After a warm-up fit on a few rows (imports, first-call costs)
it is one timed fit of s rows and one traced for memory: with s at most a sixteenth of the
training rows, about an eighth of the run's fit in CPU time.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from dwml_py.errors import ConfigError, InputError
from dwml_py.progress import SILENT, Progress
from dwml_py.settings import project_var

# Exponent ranges of t = c + a*n^b, by algorithm (see the module docstring).
EXPONENTS = {"xgboost": (0.85, 1.15), "logistic": (0.85, 1.25), "linear": (0.85, 1.2),
             "random_forest": (1.0, 1.25)}
MIN_CALIBRATION_ROWS, MAX_CALIBRATION_ROWS = 2_000, 25_000
# The largest calibration fit is about this fraction of the training rows: large enough that
# per-row cost shows above the fixed cost, small enough that calibrating stays cheap (the three
# sizes together cost about 7/4 of this fraction of a real fit, times repeats + 1).
CALIBRATION_FRACTION = 0.25
ARROW_COPIES = 2.0  # the fetched table + its train/holdout copies made by split()
METHOD = "power-law t = c + a*n^b (b clamped per algorithm) from timed fits on a warehouse sample; " \
         "memory = traced fit peak (linear in n) + Arrow data"
BOUND_METHOD = "upper bound t(s) * (n/s)^b_max and m(s/2) * n/(s/2) + Arrow data from fits on s and s/2 sampled " \
               "rows, on one thread (within the budget, so the full calibration was skipped)"
# The bounding fit's parameters that keep an algorithm's own thread pool at one thread; the rest
# (BLAS, OpenMP inside scikit-learn) is limited by threadpoolctl around the fit.
SINGLE_THREAD_PARAMS = {"xgboost": {"n_jobs": 1}, "random_forest": {"n_jobs": 1}}
WARM_UP_ROWS = 200  # the warm-up fit before the timed one: imports and first-call costs, not rows


def calibration_sizes(train_rows: int) -> list[int]:
    """Three sample sizes (a quarter, a half, all of the largest) for `train_rows` training rows.

    >>> calibration_sizes(29_687)
    [1855, 3710, 7421]
    >>> calibration_sizes(1_000)
    [250, 500, 1000]
    """
    largest = int(min(train_rows, max(MIN_CALIBRATION_ROWS, min(train_rows * CALIBRATION_FRACTION,
                                                                  MAX_CALIBRATION_ROWS))))
    if largest < 40:
        raise InputError(f"{train_rows} training rows are too few to calibrate a cost estimate.",
                         hint="a training set this small trains in well under a second; no estimate needed.")
    return [largest // 4, largest // 2, largest]


def _timed_fit(table, spec, algorithm, params, seed) -> float:
    from dwml_py.training import fit

    started = time.perf_counter()
    fit(table, spec, algorithm, params, seed=seed)
    return time.perf_counter() - started


def measure_fit(table: pa.Table, spec, algorithm: str, params: dict | None = None, seed: int = 0,
                repeats: int = 1, memory: bool = True) -> dict:
    """{rows, seconds, peak_mb}: fastest wall time of `repeats` fits, and the tracemalloc peak of
    one more fit (MB of Python-heap allocations: numpy, pandas, the model objects)."""
    seconds = min(_timed_fit(table, spec, algorithm, params, seed) for _ in range(max(1, repeats)))
    peak_mb = traced_peak_mb(table, spec, algorithm, params, seed) if memory else None
    return {"rows": table.num_rows, "seconds": round(seconds, 4),
            "peak_mb": round(peak_mb, 3) if peak_mb is not None else None}


def traced_peak_mb(table: pa.Table, spec, algorithm: str, params: dict | None = None, seed: int = 0) -> float:
    """The tracemalloc peak of one fit: MB of Python-heap allocations (numpy, pandas, the model)."""
    from dwml_py.training import fit

    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fit(table, spec, algorithm, params, seed=seed)
        return (tracemalloc.get_traced_memory()[1] - base) / 1e6
    finally:
        if not was_tracing:
            tracemalloc.stop()


def calibrate(sample: pa.Table, spec, algorithm: str, params: dict | None = None, seed: int = 0,
              sizes: list[int] | None = None, repeats: int = 2, progress: Progress = SILENT) -> list[dict]:
    """[{rows, seconds, peak_mb}] of fits on the first `sizes` rows of a shuffled `sample`."""
    sizes = sizes or calibration_sizes(sample.num_rows)
    if max(sizes) > sample.num_rows:
        raise InputError(f"Calibration size {max(sizes)} exceeds the sample's {sample.num_rows} rows.",
                         hint="fetch a larger sample or pass smaller sizes.")
    # A fixed shuffle so every prefix is a random subset (the sample is sorted by time).
    order = np.random.default_rng(seed).permutation(sample.num_rows)
    shuffled = sample.take(order)
    with progress.step(f"Calibrating {algorithm} at {', '.join(f'{s:,}' for s in sizes)} rows") as step:
        points = []
        for i, size in enumerate(sizes):
            # The first size gets one extra run: the very first fit pays imports and thread-pool
            # start-up, which the minimum then discards. Memory is linear in rows (measured), so
            # the largest size, the most expensive fit, is not traced.
            points.append(measure_fit(shuffled.slice(0, size), spec, algorithm, params, seed,
                                      repeats=repeats + (i == 0), memory=i < len(sizes) - 1))
            step.update(f"{size:,} rows: {points[-1]['seconds']:.2f} s")
    return points


def fit_time_model(calibration: list[dict], algorithm: str) -> dict:
    """{c, a, b}: t = c + a*n^b through the calibration points, b within EXPONENTS[algorithm].

    For each b on a grid, c and a come from non-negative least squares on relative errors (a
    0.1 s point counts as much as a 10 s one); the b with the smallest error wins.

    >>> m = fit_time_model([{"rows": 1000, "seconds": 0.3}, {"rows": 2000, "seconds": 0.5},
    ...                     {"rows": 4000, "seconds": 0.9}], "xgboost")
    >>> round(m["c"] + m["a"] * 16000 ** m["b"], 1)
    3.3
    """
    from scipy.optimize import nnls

    n = np.array([p["rows"] for p in calibration], dtype=np.float64)
    t = np.array([p["seconds"] for p in calibration], dtype=np.float64)
    low, high = EXPONENTS.get(algorithm, (0.8, 1.3))
    best = None
    for b in np.linspace(low, high, 41):
        design = np.column_stack([np.ones_like(n), n ** b]) / t[:, None]
        (c, a), residual = nnls(design, np.ones_like(t))
        if best is None or residual < best[0] - 1e-12:
            best = (residual, float(c), float(a), float(b))
    _, c, a, b = best
    return {"c": c, "a": a, "b": round(b, 4)}


def fit_memory_model(calibration: list[dict]) -> dict:
    """{m0, k}: traced peak MB = m0 + k*n, non-negative least squares."""
    from scipy.optimize import nnls

    points = [p for p in calibration if p.get("peak_mb") is not None]
    if not points:
        return {"m0": 0.0, "k": 0.0}
    n = np.array([p["rows"] for p in points], dtype=np.float64)
    m = np.array([p["peak_mb"] for p in points], dtype=np.float64)
    (m0, k), _ = nnls(np.column_stack([np.ones_like(n), n]), m)
    return {"m0": float(m0), "k": float(k)}


def predict(calibration: list[dict], algorithm: str, rows: int, data_mb: float = 0.0) -> dict:
    """{predicted_seconds, predicted_peak_mb, time_model, memory_model} for `rows` training rows;
    `data_mb` is the Arrow data the run holds besides the fit (see the module docstring)."""
    tm, mm = fit_time_model(calibration, algorithm), fit_memory_model(calibration)
    seconds = tm["c"] + tm["a"] * float(rows) ** tm["b"]
    peak = mm["m0"] + mm["k"] * rows + data_mb
    return {"predicted_seconds": round(seconds, 3), "predicted_peak_mb": round(peak, 2),
            "time_model": {k: float(f"{v:.6g}") for k, v in tm.items()},
            "memory_model": {k: float(f"{v:.6g}") for k, v in mm.items()}}


def estimate_from_sample(sample: pa.Table, spec, algorithm: str, rows: int, total_rows: int | None = None,
                         params: dict | None = None, seed: int = 0, repeats: int = 2,
                         progress: Progress = SILENT) -> dict:
    """The estimate for fitting `rows` rows, calibrated on `sample` (rows of the same training
    set). `total_rows` (default `rows`) is the size of the fetched table, for its Arrow memory."""
    from dwml_py.training import _canonical_algorithm

    algorithm = _canonical_algorithm(algorithm, spec.task if hasattr(spec, "task") else spec["task"])
    sizes = calibration_sizes(rows)
    if sizes[-1] > sample.num_rows:  # a smaller sample than asked for: calibrate on what there is
        sizes = [sample.num_rows // 4, sample.num_rows // 2, sample.num_rows]
    calibration = calibrate(sample, spec, algorithm, params, seed=seed, sizes=sizes, repeats=repeats,
                            progress=progress)
    bytes_per_row = sample.nbytes / max(sample.num_rows, 1)
    data_mb = ARROW_COPIES * bytes_per_row * (total_rows or rows) / 1e6
    columns = len(spec.features if hasattr(spec, "features") else spec["features"])
    return {"algorithm": algorithm, "rows": int(rows), "columns": columns,
            **predict(calibration, algorithm, rows, data_mb), "data_mb": round(data_mb, 2),
            "calibration": calibration, "method": METHOD}


def estimate_training_cost(warehouse, spec, algorithm: str = "xgboost", params: dict | None = None,
                           holdout_fraction: float = 0.2, seed: int = 0, repeats: int = 2,
                           progress: Progress = SILENT, budget: dict | None = None) -> dict:
    """{model, algorithm, rows, columns, predicted_seconds, predicted_peak_mb, calibration, method, ...}
    for the training run of `spec`: counts in the warehouse, one sample fetched, timed small fits.

    With `budget` ({max_seconds, max_memory_mb}, as cost_budget gives) an upper bound from one
    small fit is returned instead when it is within the budget (see the module docstring)."""
    from dwml_py.model_selection import data_characteristics, sample_training_table

    with progress.step(f"Counting the training set of {spec.model_name}") as step:
        ch = data_characteristics(warehouse, spec, holdout_fraction=holdout_fraction)
        step.summary = f"{ch['rows']:,} rows, {ch['train_rows']:,} to fit"
    largest = calibration_sizes(ch["train_rows"])[-1]
    with progress.step(f"Sampling {largest:,} rows for calibration"):
        sample = sample_training_table(warehouse, spec, largest, seed=seed)
    result = None
    if budget and any(v is not None for v in budget.values()):
        result = bound_from_sample(sample, spec, algorithm, ch["train_rows"], total_rows=ch["rows"], params=params,
                                   seed=seed, progress=progress)
        if not within_budget(result, budget):
            result = None  # near or over the budget: the verdict rests on the full calibration
    if result is None:
        result = estimate_from_sample(sample, spec, algorithm, ch["train_rows"], total_rows=ch["rows"],
                                      params=params, seed=seed, repeats=repeats, progress=progress)
    return {"model": spec.model_name, **result, "total_rows": ch["rows"], "holdout_fraction": holdout_fraction}


def bound_from_sample(sample: pa.Table, spec, algorithm: str, rows: int, total_rows: int | None = None,
                      params: dict | None = None, seed: int = 0, progress: Progress = SILENT) -> dict:
    """Upper bounds of the time and memory of fitting `rows` rows from one fit on the smallest
    calibration size of `sample` (the first of two runs pays imports and thread start-up)."""
    from dwml_py.training import _canonical_algorithm

    algorithm = _canonical_algorithm(algorithm, spec.task if hasattr(spec, "task") else spec["task"])
    size = min(calibration_sizes(rows)[0], sample.num_rows)
    shuffled = sample.take(np.random.default_rng(seed).permutation(sample.num_rows))  # as calibrate() draws
    one_thread = {**(params or {}), **SINGLE_THREAD_PARAMS.get(algorithm, {})}
    with progress.step(f"Bounding the cost of {algorithm} from a fit on {size:,} rows, on one thread") as step, \
            threadpool_limits(limits=1):
        measure_fit(shuffled.slice(0, min(WARM_UP_ROWS, size)), spec, algorithm, one_thread, seed, memory=False)
        point = measure_fit(shuffled.slice(0, size), spec, algorithm, one_thread, seed, repeats=1, memory=False)
        # memory is linear in rows, so half the rows bound it as well, at half the cost of a traced fit
        traced_rows = max(size // 2, 1)
        point["peak_mb"] = round(traced_peak_mb(shuffled.slice(0, traced_rows), spec, algorithm, one_thread, seed), 3)
        point.update(peak_rows=traced_rows, threads=1)
        step.update(f"{size:,} rows: {point['seconds']:.2f} s")
    scale = max(1.0, rows / max(size, 1))
    exponent = EXPONENTS.get(algorithm, (0.8, 1.3))[1]
    data_mb = ARROW_COPIES * sample.nbytes / max(sample.num_rows, 1) * (total_rows or rows) / 1e6
    columns = len(spec.features if hasattr(spec, "features") else spec["features"])
    return {"algorithm": algorithm, "rows": int(rows), "columns": columns,
            "predicted_seconds": round(point["seconds"] * scale ** exponent, 3),
            "predicted_peak_mb": round(point["peak_mb"] * max(1.0, rows / traced_rows) + data_mb, 2),
            "data_mb": round(data_mb, 2),
            "calibration": [point], "method": BOUND_METHOD, "upper_bound": True}


def within_budget(estimate: dict, budget: dict) -> bool:
    """Both predictions at or under their budgets (an unset budget holds anything)."""
    seconds, mb = budget.get("max_seconds"), budget.get("max_memory_mb")
    return (seconds is None or estimate["predicted_seconds"] <= seconds) and \
        (mb is None or estimate["predicted_peak_mb"] <= mb)


# -- the gate ------------------------------------------------------------------------------------

def cost_budget(project_config: dict | None) -> dict:
    """{max_seconds, max_memory_mb} from `vars: dwml: cost:` of dbt_project.yml (None when unset)."""
    cost = project_var(project_config, "cost")
    if cost is None:
        return {"max_seconds": None, "max_memory_mb": None}
    if not isinstance(cost, dict):
        raise ConfigError(f"vars: dwml: cost: in dbt_project.yml must be a mapping, got {cost!r}.",
                          hint="write e.g. `cost: {max_seconds: 3600, max_memory_mb: 8000}`.")
    unknown = sorted(set(cost) - {"max_seconds", "max_memory_mb"})
    if unknown:
        raise ConfigError(f"Unknown key(s) {', '.join(map(repr, unknown))} under vars: dwml: cost:.",
                          hint="the keys are max_seconds and max_memory_mb.")
    return {key: _positive(cost.get(key), f"vars: dwml: cost: {key}") for key in ("max_seconds", "max_memory_mb")}


def _positive(value, where: str, error: type = ConfigError) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise error(f"{where} must be a positive number, got {value!r}.", hint="e.g. 3600 (seconds) or 8000 (MB).")
    return float(value)


def cost_gate(estimate: dict, budget_seconds: float | None = None, budget_mb: float | None = None,
              project_config: dict | None = None) -> dict:
    """{passed, reasons, budget}: does the estimate fit the budget?

    Explicit budgets win over `vars: dwml: cost:` of `project_config` (dbt_project.yml as a
    dict, e.g. `project.config`); with no budget at all the gate passes.

    >>> cost_gate({"predicted_seconds": 90, "predicted_peak_mb": 100}, budget_seconds=60)["reasons"]
    ['predicted 90 s exceeds the budget of 60 s (vars: dwml: cost: max_seconds, or pass an override)']
    """
    budget = cost_budget(project_config)
    if budget_seconds is not None:
        budget["max_seconds"] = _positive(budget_seconds, "budget_seconds", InputError)
    if budget_mb is not None:
        budget["max_memory_mb"] = _positive(budget_mb, "budget_mb", InputError)
    reasons = []
    seconds, mb = estimate.get("predicted_seconds"), estimate.get("predicted_peak_mb")
    if budget["max_seconds"] is not None and seconds is not None and seconds > budget["max_seconds"]:
        reasons.append(f"predicted {seconds:g} s exceeds the budget of {budget['max_seconds']:g} s "
                       "(vars: dwml: cost: max_seconds, or pass an override)")
    if budget["max_memory_mb"] is not None and mb is not None and mb > budget["max_memory_mb"]:
        reasons.append(f"predicted peak {mb:g} MB exceeds the budget of {budget['max_memory_mb']:g} MB "
                       "(vars: dwml: cost: max_memory_mb, or pass an override)")
    return {"passed": not reasons, "reasons": reasons, "budget": budget}
