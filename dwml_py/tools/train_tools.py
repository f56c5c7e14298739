"""The train_model tool: `dwml train NAME`."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from dwml_py.errors import InputError
from dwml_py.progress import SILENT
from dwml_py.tools.registry import FRACTION, SEED, TEXT_MAX, TOOLS, Param


def parse_params(pairs: list[str] | None) -> dict:
    """`key=value` pairs from the command line; values are read as JSON when they parse (numbers,
    booleans), as text otherwise.

    >>> parse_params(["max_depth=3", "learning_rate=0.1", "objective=binary:logistic"])
    {'max_depth': 3, 'learning_rate': 0.1, 'objective': 'binary:logistic'}
    """
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param takes KEY=VALUE, got {pair!r}.", hint="e.g. --param max_depth=3")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


@TOOLS.tool("train_model", cli=("train",), read_only=False)
def train_model(
    project,
    name: Annotated[str, Param("the ML model to train, as declared in a feature model's meta.dwml.models "
                               "(e.g. churn)", positional=True)],
    algorithm: Annotated[Literal["xgboost", "logistic", "linear", "random_forest"],
                         Param("algorithm to fit")] = "xgboost",
    param: Annotated[list[str] | None, Param("algorithm parameter KEY=VALUE (repeatable)", max_length=TEXT_MAX)] = None,
    seed: Annotated[int, Param("random seed: the same data and seed give the same metrics", **SEED)] = 0,
    holdout_fraction: Annotated[float, Param("share of the data held out for evaluation", **FRACTION)] = 0.2,
    split: Annotated[Literal["time", "random"] | None,
                     Param("time split (default when the model has a timestamp) or stratified random")] = None,
    feature_model: Annotated[str | None, Param("train from this dbt model instead of the declaring one")] = None,
    label: Annotated[str | None, Param("label as MODEL.COLUMN, overriding meta.dwml")] = None,
    task: Annotated[Literal["classification", "regression"] | None, Param("task, overriding meta.dwml")] = None,
    override: Annotated[list[str] | None, Param("let a refusing gate pass: quality or cost (repeatable); "
                                                "needs --reason and is recorded")] = None,
    reason: Annotated[str | None, Param("why the override is justified", text=True)] = None,
    out_of_core: Annotated[bool | None, Param("stream the training set from the warehouse in Arrow batches "
                                              "into XGBoost's quantised matrix (bounded memory; xgboost "
                                              "only); default: when the estimated in-memory peak exceeds "
                                              "vars.dwml.training.max_in_memory_mb")] = None,
    progress=SILENT,
) -> dict:
    """Gated training run: checks quality, governance and cost, builds the training set in the warehouse, fits, evaluates, logs and registers a model version.

    A refused gate exits 2 and records the run as failed; nothing is registered then. The result
    names the run, the new version, its holdout metrics and the data fingerprint, and
    `training_mode` says whether the training set was held in memory or streamed (and why).
    """
    from dwml_py.training_run import train

    label_model = label_column = None
    if label:
        label_model, _, label_column = label.rpartition(".")
        if not label_model:
            raise InputError(f"--label must be MODEL.COLUMN, got {label!r}.", hint="e.g. --label customer_labels.churned_30d")
    return train(project, name, algorithm=algorithm, params=parse_params(param), seed=seed,
                 holdout_fraction=holdout_fraction, split_method=split, override=override, reason=reason,
                 progress=progress, feature_model=feature_model, label_model=label_model,
                 label_column=label_column, task=task, out_of_core=out_of_core)
