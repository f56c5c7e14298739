"""Monitoring tools: `dwml evaluate NAME`, `dwml abtest NAME --champion A --challenger B`, `dwml monitor`."""

from __future__ import annotations

from typing import Annotated, Literal

from dwml_py.progress import SILENT
from dwml_py.tools.registry import DAYS, SEED, TOOLS, VERSION, Param

_AS_OF = "judge label maturity as of this date (ISO; default now)"
_DELAY = "days after a snapshot before its label counts (default: the label's horizon_days)"


@TOOLS.tool("evaluate_model", cli=("evaluate",), read_only=False, verdict="alert")
def evaluate_model(
    project,
    name: Annotated[str, Param("the registered model (e.g. churn)", positional=True)],
    version: Annotated[int | None, Param("evaluate this version (instead of the alias)", **VERSION)] = None,
    alias: Annotated[str, Param("evaluate the version this alias points at")] = "production",
    window: Annotated[Literal["month", "week", "day"], Param("time window of the metrics, on the snapshot")] = "month",
    label_delay_days: Annotated[int | None, Param(_DELAY, **DAYS)] = None,
    relation: Annotated[str | None, Param("score this labelled table (schema.table or a dbt model) with the version "
                                          "instead of reading its predictions")] = None,
    after: Annotated[str | None, Param("only snapshots >= this date (ISO)")] = None,
    before: Annotated[str | None, Param("only snapshots < this date (ISO)")] = None,
    as_of: Annotated[str | None, Param(_AS_OF)] = None,
    progress=SILENT,
) -> dict:
    """Evaluate a model version on matured labels per time window, against its training holdout metrics.

    Joins the version's predictions (or scores --relation) to the labels once they matured,
    computes roc_auc, pr_auc, log_loss, accuracy, f1, brier (classification) or rmse, mae, r2
    (regression) per window, writes dwml.performance_metrics, and exits 2 when a window degraded.
    """
    from dwml_py.performance import evaluate_performance

    return evaluate_performance(project, name, version=version, alias=alias, window=window,
                                label_delay_days=label_delay_days, relation=relation, after=after, before=before,
                                as_of=as_of, progress=progress)


@TOOLS.tool("ab_test_models", cli=("abtest",), read_only=False)
def ab_test_models(
    project,
    name: Annotated[str, Param("the registered model (e.g. churn)", positional=True)],
    champion: Annotated[int, Param("the champion version (usually the one in production)", **VERSION)],
    challenger: Annotated[int, Param("the challenger version", **VERSION)],
    metric: Annotated[str | None, Param("metric deciding the verdict (default roc_auc; rmse for regression)")] = None,
    relation: Annotated[str | None, Param("score this labelled table with both versions instead of their "
                                          "predictions")] = None,
    after: Annotated[str | None, Param("only snapshots >= this date (ISO)")] = None,
    before: Annotated[str | None, Param("only snapshots < this date (ISO)")] = None,
    label_delay_days: Annotated[int | None, Param(_DELAY, **DAYS)] = None,
    as_of: Annotated[str | None, Param(_AS_OF)] = None,
    resamples: Annotated[int, Param("paired bootstrap resamples", minimum=100, maximum=100_000)] = 1000,
    seed: Annotated[int, Param("seed of the bootstrap", **SEED)] = 0,
    confidence: Annotated[float, Param("confidence level of the interval", minimum=0.5, maximum=0.999)] = 0.95,
    progress=SILENT,
) -> dict:
    """Champion vs challenger on the same matured labelled rows: paired bootstrap CI, DeLong/McNemar, verdict.

    The verdict rule is stored with the result in dwml.ab_tests: challenger_better when the CI of
    the difference lies on the challenger's better side of 0 and p < 0.05, champion_better on the
    other side, else no_difference.
    """
    from dwml_py.ab_testing import ab_test

    return ab_test(project, name, champion, challenger, metric=metric, relation=relation, after=after, before=before,
                   label_delay_days=label_delay_days, as_of=as_of, resamples=resamples, seed=seed,
                   confidence=confidence, progress=progress)


@TOOLS.tool("monitor_models", cli=("monitor",), read_only=False, verdict="alert")
def monitor_models(
    project,
    alias: Annotated[str, Param("monitor every model with this alias")] = "production",
    after: Annotated[str | None, Param("only rows/snapshots >= this date (ISO)")] = None,
    before: Annotated[str | None, Param("only rows/snapshots < this date (ISO)")] = None,
    window: Annotated[Literal["month", "week", "day"], Param("time window of the performance metrics")] = "month",
    label_delay_days: Annotated[int | None, Param(_DELAY, **DAYS)] = None,
    as_of: Annotated[str | None, Param(_AS_OF)] = None,
    progress=SILENT,
) -> dict:
    """Drift and performance of every deployed model in one command, for a scheduler; exits 2 on any alert.

    An alert: dataset or score drift, any feature with major drift (PSI >= 0.25), a degraded
    performance window, or a check that could not run.
    """
    from dwml_py.monitoring import monitor

    return monitor(project, alias=alias, after=after, before=before, window=window,
                   label_delay_days=label_delay_days, as_of=as_of, progress=progress)
