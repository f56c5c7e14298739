"""Champion vs challenger on the same labelled rows: `dwml abtest NAME --champion A --challenger B
[--metric roc_auc] [--relation R] [--after D] [--before D]`.

The rows: every (entity, snapshot) that *both* versions scored in dwml.predictions (each one's
latest score) and whose label has matured (see dwml_py.performance: the same join to labels and
the same maturity rule). When the versions share no such rows, or with `relation`, the labelled
rows are scored here with both versions: the given relation (label + both versions' features),
else the champion's training query (its feature model joined point-in-time to its labels) with
both versions' features.

The statistics (dwml_py.ab_stats): the metric of each version, their difference (challenger
minus champion) with a seeded paired-bootstrap confidence interval, and a p-value from the
test that fits the metric: DeLong's test for roc_auc, McNemar's test for accuracy (exact
binomial below 25 discordant pairs, else chi-square with continuity correction), the
bootstrap's own two-sided p-value for the others. For a classifier the comparison always
includes roc_auc (DeLong) and accuracy (McNemar) besides the requested metric.

Verdict (stored with its rule): challenger_better when the CI of the difference lies entirely
on the challenger's better side of 0 and p < alpha; champion_better when it lies entirely on
the other side and p < alpha; otherwise no_difference. The verdict of the requested metric is
the test's verdict. One row per compared metric goes to dwml.ab_tests under one test_id.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
from sqlglot import exp

from dwml_py import ab_stats
from dwml_py import performance as perf
from dwml_py.errors import InputError, did_you_mean
from dwml_py.progress import SILENT, Progress
from dwml_py.tables import DWML_SCHEMA

DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}


def _check_args(metric, resamples, confidence, alpha) -> None:
    if metric is not None and metric not in ab_stats.METRICS:
        raise InputError(f"Unknown metric {metric!r}.",
                         hint=f"{did_you_mean(str(metric), ab_stats.METRICS)} (metrics: {', '.join(ab_stats.METRICS)})")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 100 <= resamples <= 100_000:
        raise InputError(f"resamples must be a whole number from 100 to 100000, got {resamples!r}.",
                         hint="1000 is the default; more narrows the interval's Monte Carlo error.")
    if not 0.5 < confidence < 1:
        raise InputError(f"confidence must be between 0.5 and 1, got {confidence!r}.", hint="e.g. 0.95")
    if not 0 < alpha < 0.5:
        raise InputError(f"alpha must be between 0 and 0.5, got {alpha!r}.", hint="e.g. 0.05")


def _same_labels(name: str, champion, challenger, versions: tuple[int, int]) -> None:
    a, b = champion.spec or {}, challenger.spec or {}
    if champion.task != challenger.task:
        raise InputError(f"Versions {versions[0]} and {versions[1]} of {name!r} do different tasks "
                         f"({champion.task} vs {challenger.task}); they cannot be compared on one metric.",
                         hint="compare versions of the same task.")
    if (a.get("label_table"), a.get("label_column")) != (b.get("label_table"), b.get("label_column")):
        raise InputError(f"Versions {versions[0]} and {versions[1]} of {name!r} predict different labels "
                         f"({a.get('label_table')}.{a.get('label_column')} vs {b.get('label_table')}."
                         f"{b.get('label_column')}).", hint="an A/B test compares versions of the same label.")
    if champion.task == "classification" and list(champion.classes) != list(challenger.classes):
        raise InputError(f"Versions {versions[0]} and {versions[1]} of {name!r} have different classes "
                         f"({champion.classes!r} vs {challenger.classes!r}).", hint="retrain on the same label.")


def _training_rows_query(warehouse, champion, challenger, window, cutoff, after, before) -> tuple[exp.Select, list]:
    """The champion's point-in-time training query with both versions' features, matured and windowed."""
    from dwml_py.training_set import TrainingSpec, build_training_query

    spec = champion.spec or {}
    other = challenger.spec or {}
    if (other.get("feature_schema"), other.get("feature_table")) != (spec.get("feature_schema"),
                                                                     spec.get("feature_table")):
        raise InputError("The two versions were trained on different feature models "
                         f"({spec.get('feature_table')} vs {other.get('feature_table')}) and share no scored rows.",
                         hint="score both with `dwml predict NAME --version N` on the same table, or pass "
                         "--relation with a labelled table holding both versions' features.")
    features = list(dict.fromkeys(champion.feature_names + challenger.feature_names))
    keys = set(spec.get("entity") or []) | {spec.get("timestamp"), spec["label_column"]}
    query = build_training_query(TrainingSpec.from_dict({**spec, "features": [f for f in features if f not in keys]}),
                                 warehouse.dialect, asof_join=warehouse.capabilities.asof_join, order=False)
    return perf.relation_query(query.subquery("t"), spec["label_column"], features, spec.get("timestamp"), window,
                               cutoff, after, before), features


def compare(metric: str, y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, thresholds: tuple, *,
            resamples: int, seed: int, confidence: float, alpha: float) -> dict:
    """One metric compared: values, difference, bootstrap CI, the fitting test's p-value, verdict, rule."""
    boot = ab_stats.paired_bootstrap(y, score_a, score_b, metric, resamples=resamples, seed=seed,
                                     confidence=confidence, threshold_a=thresholds[0], threshold_b=thresholds[1])
    interval = f"paired bootstrap {confidence:.0%} CI ({resamples} resamples, seed {seed})"
    detail = None
    if metric == "roc_auc" and boot["difference"] is not None:
        detail = ab_stats.delong_test(y, score_a, score_b, confidence=confidence)
        test, p_value = "DeLong", detail["p_value"]
    elif metric == "accuracy":
        detail = ab_stats.mcnemar_test((score_a >= thresholds[0]).astype(int) == y,
                                       (score_b >= thresholds[1]).astype(int) == y)
        test, p_value = detail["method"], detail["p_value"]
    else:
        test, p_value = "paired bootstrap", boot["p_value"]
    return {"metric": metric, "champion_value": boot["champion_value"], "challenger_value": boot["challenger_value"],
            "difference": boot["difference"], "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
            "p_value": p_value, "method": f"{interval}; p-value: {test}",
            "verdict": ab_stats.verdict(metric, boot["ci_low"], boot["ci_high"], p_value, alpha),
            "rule": ab_stats.verdict_rule(metric, confidence, alpha, test.split(" (")[0]),
            "skipped_resamples": boot["skipped"], "test": detail}


def ab_test(project, name: str, champion: int, challenger: int, metric: str | None = None,
            relation: str | None = None, after=None, before=None, label_delay_days: int | None = None, as_of=None,
            resamples: int = 1000, seed: int = 0, confidence: float = 0.95, alpha: float = 0.05, warehouse=None,
            progress: Progress = SILENT) -> dict:
    """Compare two versions of a model on the same matured labelled rows; see the module doc."""
    from dwml_py.drift import feature_meta
    from dwml_py.rows import ensure_once, table_rows, utcnow
    from dwml_py.warehouse import given_or_connected

    started = time.perf_counter()
    _check_args(metric, resamples, confidence, alpha)
    if champion == challenger:
        raise InputError(f"Champion and challenger are both version {champion}.", hint="compare two versions.")
    with given_or_connected(project, warehouse) as warehouse:
        ensure_once(warehouse)
        with progress.step(f"Loading versions {champion} and {challenger} of {name}"):
            row_a, model_a = perf.load_version(project, warehouse, name, champion, None)
            row_b, model_b = perf.load_version(project, warehouse, name, challenger, None)
        _same_labels(name, model_a, model_b, (champion, challenger))
        for v, m in ((champion, model_a), (challenger, model_b)):
            perf.check_binary(m, name, v, "ab_test_models")
        task = model_a.task
        metric = metric or DEFAULT_METRIC[task]
        if ab_stats.METRICS[metric][2] != task:
            known = [m for m, spec in ab_stats.METRICS.items() if spec[2] == task]
            raise InputError(f"Metric {metric!r} is not a {task} metric.", hint=f"choose from {', '.join(known)}.")
        meta, _ = feature_meta(project, row_a.get("feature_model"))
        rule = perf.resolve_rule(project.config, meta, task)
        delay, now, cutoff = perf.maturity(model_a.spec or {}, label_delay_days, rule["label_delay_days"], as_of)
        models, notes = [model_a, model_b], []

        with progress.step("Collecting the labelled rows both versions are judged on") as step:
            pairs, source = None, None
            if not relation and all(perf.has_predictions(warehouse, name, v) for v in (champion, challenger)):
                pairs, source = perf.labelled_pairs(project, warehouse, name, [champion, challenger], models, None,
                                                    "month", cutoff, after, before)
                if not pairs.num_rows:
                    notes.append("the versions' predictions share no row with a matured label: both scored the "
                                 "labelled rows here instead.")
                    pairs = None
            if pairs is None and relation:
                pairs, source = perf.relation_pairs(project, warehouse, models, relation, "month", cutoff, after,
                                                    before)
            elif pairs is None:
                query, features = _training_rows_query(warehouse, model_a, model_b, "month", cutoff, after, before)
                pairs = perf.scored_pairs(warehouse, query, models, features)
                source = f"{(model_a.spec or {}).get('feature_table')} joined to its labels, scored with both versions"
            step.summary = f"{pairs.num_rows:,} rows from {source}"

        y, kept = perf.encode_labels(task, model_a.classes, pairs.column(perf.LABEL_COLUMN).to_pylist())
        scores = [np.asarray(pairs.column(perf.score_column(k)).to_numpy(zero_copy_only=False),
                             dtype=np.float64)[kept] for k in range(2)]
        if task == "classification" and len(np.unique(y)) < 2:
            raise InputError(f"The {len(y):,} labelled rows hold a single class, so the versions cannot be told apart.",
                             hint="widen the window (--after/--before) or wait for more labels to mature.")
        if len(y) < 2:
            raise InputError(f"Only {len(y)} labelled row(s) to compare on.",
                             hint="widen the window, wait for labels to mature, or pass --relation.")

        metrics = [metric] + ([m for m in ("roc_auc", "accuracy") if m != metric] if task == "classification" else [])
        comparisons = []
        with progress.step(f"Comparing on {len(y):,} rows ({resamples} bootstrap resamples)") as step:
            for m in metrics:
                comparisons.append(compare(m, y, scores[0], scores[1], (model_a.threshold, model_b.threshold),
                                           resamples=resamples, seed=seed, confidence=confidence, alpha=alpha))
            step.summary = f"{metric}: {comparisons[0]['verdict']}"

        test_id, computed_at = uuid.uuid4().hex, utcnow()
        rows = [{"test_id": test_id, "model_name": name, "champion_version": champion,
                 "challenger_version": challenger, **{k: c[k] for k in ("metric", "champion_value", "challenger_value",
                                                                       "difference", "ci_low", "ci_high", "p_value",
                                                                       "method", "verdict", "rule")},
                 "row_count": int(len(y)), "computed_at": computed_at} for c in comparisons]
        with warehouse.transaction():
            warehouse.write_arrow(table_rows("ab_tests", rows), DWML_SCHEMA, "ab_tests")
        main = comparisons[0]
        return {"test_id": test_id, "model_name": name, "champion": champion, "challenger": challenger,
                "task": task, "metric": metric, "rows": int(len(y)), "source": source,
                "label_delay_days": delay, "as_of": perf.iso(now), "matured_until": perf.iso(cutoff),
                "after": perf.iso(after), "before": perf.iso(before), "verdict": main["verdict"],
                "rule": main["rule"], "comparisons": comparisons, "notes": notes,
                "seconds": round(time.perf_counter() - started, 3)}
