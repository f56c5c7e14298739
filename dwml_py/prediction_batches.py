"""Batches of dwml.predictions: each source owns its own, so no command can erase another's.

Three writers add rows to dwml.predictions, each in batches that a rerun replaces:

| source  | writer                                   | batch ids                         |
|---------|------------------------------------------|-----------------------------------|
| `batch` | `dwml predict` (dwml_py.batch_scoring)   | `--batch-id`, or MODEL-vN-RELATION |
| `sql`   | `dbt run` of a scoring model (the post-hook macros/scoring/dwml_log_predictions.sql) | `dbt:<invocation id>:<model>` |
| `rest`  | `dwml serve` (dwml_py.prediction_log)    | `rest-<time>-<random>`            |

A batch is identified by its source *and* its id: replacing one deletes only rows of that source
(`batch_filter`), and a batch id a person chooses may not use another source's prefix
(`check_batch_id`), so `dwml predict --batch-id 'dbt:...'` can neither replace SQL-scored rows
nor be mistaken for them.

>>> check_batch_id("nightly-2024-06-01", "batch")
'nightly-2024-06-01'
>>> check_batch_id("dbt:1234:churn_scores", "batch")
Traceback (most recent call last):
...
dwml_py.errors.InputError: The batch id 'dbt:1234:churn_scores' starts with 'dbt:', which is reserved for batches of source 'sql' (scored by dbt).
Hint: choose an id without that prefix; each source replaces only its own batches.
"""

from __future__ import annotations

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError

# The prefix each generating writer puts on its batch ids, and who that is.
RESERVED_PREFIXES = {"dbt:": ("sql", "scored by dbt"), "rest-": ("rest", "served by `dwml serve`")}
SOURCES = ("batch", "sql", "rest")
MAX_BATCH_ID = 256  # the tool registry's NAME_MAX: a batch id is an identifier


def check_batch_id(batch_id: str, source: str) -> str:
    """`batch_id` when a writer of `source` may use it; InputError when it is empty, too long, or in
    another source's namespace."""
    if not isinstance(batch_id, str) or not batch_id.strip():
        raise InputError(f"A batch id must be a non-empty text, got {batch_id!r}.",
                         hint="leave --batch-id out for the default (MODEL-vVERSION-RELATION).")
    if len(batch_id) > MAX_BATCH_ID:
        raise InputError(f"The batch id is {len(batch_id):,} characters long; the limit is {MAX_BATCH_ID}.",
                         hint="use a shorter id, e.g. nightly-2024-06-01.")
    for prefix, (owner, who) in RESERVED_PREFIXES.items():
        if batch_id.startswith(prefix) and owner != source:
            raise InputError(f"The batch id {batch_id!r} starts with {prefix!r}, which is reserved for batches of "
                             f"source {owner!r} ({who}).",
                             hint="choose an id without that prefix; each source replaces only its own batches.")
    return batch_id


def batch_filter(source: str, batch_id: str, model_name: str | None = None) -> exp.Expression:
    """The rows of one batch of `source` (and of `model_name`, when given)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    conditions = [sqlmod.column("source").eq(sqlmod.literal(source)),
                  sqlmod.column("batch_id").eq(sqlmod.literal(batch_id))]
    if model_name is not None:
        conditions.append(sqlmod.column("model_name").eq(sqlmod.literal(model_name)))
    return exp.and_(*conditions)
