"""dwml's own tables, each defined once.

This module is the single definition. Python creates and migrates the tables from it
(`ensure_tables`); the dbt side (sources, the models over the tables, their docs and tests,
and the macro that lets dbt create them) is generated from it by `python -m dwml_py.tables`
and checked to be in sync by the test suite.

Timestamps are UTC without a time zone. JSON columns hold JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from dwml_py import sql as sqlmod

# The vocabulary of dwml.drift_metrics rows, shared by the drift check that writes them and the
# status and monitor views that read them: the row of the whole data set's verdict, the row of the
# model's score, and the statistics whose crossing makes a feature drift.
DATASET_FEATURE = "__dataset__"
SCORE_FEATURE = "__score__"
PRIMARY_STATISTICS = ("psi", "js_distance", "wasserstein_norm")

DWML_SCHEMA = "dwml"

# Logical types -> sqlglot types (rendered per dialect) and dbt cross-database type macros.
LOGICAL_TYPES = {
    "string": (exp.DataType.Type.TEXT, "dbt.type_string()"),
    "integer": (exp.DataType.Type.BIGINT, "dbt.type_bigint()"),
    # dbt.type_float() is a 4-byte FLOAT on DuckDB and Spark: dwml_double_type() says DOUBLE there
    "double": (exp.DataType.Type.DOUBLE, "dwml.dwml_double_type()"),
    "boolean": (exp.DataType.Type.BOOLEAN, "dbt.type_boolean()"),
    "timestamp": (exp.DataType.Type.TIMESTAMP, "dbt.type_timestamp()"),
    "date": (exp.DataType.Type.DATE, "'date'"),
    "json": (exp.DataType.Type.TEXT, "dbt.type_string()"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    not_null: bool = False
    accepted_values: tuple[str, ...] = ()

    def __post_init__(self):
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"column {self.name!r}: type must be one of {sorted(LOGICAL_TYPES)}, got {self.type!r}")


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    unique_key: tuple[str, ...] = field(default=())

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name, type_, description, **kw) -> Column:
    return Column(name, type_, description, **kw)


_WHO = _c("created_by", "string", "Who did it: the user, or the agent/tool caller.")

TABLES: dict[str, TableSpec] = {t.name: t for t in [
    TableSpec("runs", "One row per training run or tracked experiment run; a failed run keeps its error.", (
        _c("run_id", "string", "Unique id of the run.", not_null=True),
        _c("experiment", "string", "Experiment the run belongs to (defaults to the model name)."),
        _c("model_name", "string", "Name of the ML model the run trains, when it trains one."),
        _c("status", "string", "running, finished or failed.", not_null=True,
           accepted_values=("running", "finished", "failed")),
        _c("started_at", "timestamp", "When the run started (UTC).", not_null=True),
        _c("finished_at", "timestamp", "When the run finished or failed (UTC)."),
        _c("feature_model", "string", "dbt model the features came from."),
        _c("label", "string", "Label as MODEL.COLUMN."),
        _c("task", "string", "classification or regression."),
        _c("algorithm", "string", "Algorithm trained."),
        _c("params", "json", "Parameters logged for the run."),
        _c("data_fingerprint", "string", "Order-independent hash of every row and column of the training set."),
        _c("row_count", "integer", "Rows in the training set."),
        _c("manifest_checksum", "string", "Checksum of the feature model's manifest node."),
        _c("dbt_invocation_id", "string", "dbt invocation that built the feature model."),
        _c("git_sha", "string", "Git commit of the project at training time."),
        _c("package_versions", "json", "Versions of dwml, dbt, scikit-learn, xgboost, ..."),
        _c("seed", "integer", "Random seed."),
        _c("durations", "json", "Seconds spent per step."),
        _c("gates", "json", "Gate decisions taken before training."),
        _c("features", "json", "Feature schema the run trained on: names, types and roles."),
        _c("artifacts", "json", "Artifacts the run logged: name, uri, sha256, size and format of each."),
        _c("tags", "json", "Free-form tags given to the run."),
        _c("error", "string", "Error message of a failed run."),
        _WHO,
    ), unique_key=("run_id",)),
    TableSpec("run_metrics", "Metrics logged by runs, one row per metric value.", (
        _c("run_id", "string", "Run that logged the metric.", not_null=True),
        _c("metric", "string", "Metric name, e.g. roc_auc.", not_null=True),
        _c("value", "double", "Metric value."),
        _c("split", "string", "Data split the metric was computed on (train, holdout, cv)."),
        _c("step", "integer", "Step or iteration, for metrics logged over time."),
        _c("logged_at", "timestamp", "When it was logged (UTC).", not_null=True),
    )),
    TableSpec("model_versions", "Registered model versions: one row per model name and version.", (
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("version", "integer", "Version number, from 1 upwards per model.", not_null=True),
        _c("run_id", "string", "Run that produced the artifact."),
        _c("status", "string", "registered or archived.", not_null=True,
           accepted_values=("registered", "archived")),
        _c("task", "string", "classification or regression."),
        _c("algorithm", "string", "Algorithm of the artifact."),
        _c("feature_model", "string", "dbt model the features come from."),
        _c("features", "json", "Feature schema: names, types and roles, as scoring expects them."),
        _c("spec", "json", "The ML spec the version was trained with (entity, timestamp, label, feature table), "
           "read by drift without loading the artifact; null for versions registered before it was kept."),
        _c("artifact_uri", "string", "Where the artifact is stored."),
        _c("artifact_sha256", "string", "sha256 of the artifact, verified before every load.", not_null=True),
        _c("artifact_format", "string", "xgboost-json, xgboost-ubj, skops, ..."),
        _c("metrics", "json", "Holdout metrics at registration."),
        _c("description", "string", "Free text."),
        _c("created_at", "timestamp", "When the version was registered (UTC).", not_null=True),
        _WHO,
    ), unique_key=("model_name", "version")),
    TableSpec("model_aliases", "Alias history: every move of an alias (production, staging, ...) is a row; "
              "the latest row per model and alias is current.", (
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("alias", "string", "Alias name, e.g. production.", not_null=True),
        _c("version", "integer", "Version the alias points to from set_at on.", not_null=True),
        _c("previous_version", "integer", "Version it pointed to before, if any."),
        _c("reason", "string", "Why it moved (deploy, rollback, ...)."),
        _c("set_at", "timestamp", "When the alias moved (UTC).", not_null=True),
        _c("set_by", "string", "Who moved it."),
    )),
    TableSpec("reference_profiles", "Training-time profile of each feature and of the score: the baseline of "
              "drift detection.", (
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("version", "integer", "Model version.", not_null=True),
        _c("feature", "string", "Feature name, or the score.", not_null=True),
        _c("kind", "string", "numeric, categorical or score.", not_null=True,
           accepted_values=("numeric", "categorical", "score")),
        _c("row_count", "integer", "Rows profiled."),
        _c("missing_rate", "double", "Share of missing values."),
        _c("mean", "double", "Mean (numeric)."),
        _c("std", "double", "Standard deviation (numeric)."),
        _c("bin_edges", "json", "Quantile cut points (numeric)."),
        _c("bin_counts", "json", "Rows per bin, or per category."),
        _c("categories", "json", "Category values in the order of bin_counts (categorical)."),
        _c("computed_at", "timestamp", "When the profile was computed (UTC).", not_null=True),
    )),
    TableSpec("table_profiles", "Warehouse-side profiles of tables, one row per column and profiling run.", (
        _c("profile_id", "string", "Id of the profiling run.", not_null=True),
        _c("relation", "string", "Profiled relation.", not_null=True),
        _c("column_name", "string", "Column.", not_null=True),
        _c("data_type", "string", "Warehouse type of the column."),
        _c("row_count", "integer", "Rows in the table."),
        _c("null_count", "integer", "Nulls in the column."),
        _c("null_rate", "double", "Share of nulls."),
        _c("distinct_count", "integer", "Distinct values (approximate where the engine has it)."),
        _c("min_value", "string", "Minimum, as text."),
        _c("max_value", "string", "Maximum, as text."),
        _c("mean", "double", "Mean (numeric)."),
        _c("std", "double", "Standard deviation (numeric)."),
        _c("quantiles", "json", "Quantiles (numeric)."),
        _c("top_values", "json", "Most frequent values with counts (categorical)."),
        _c("string_lengths", "json", "Min/mean/max length (text)."),
        _c("freshness_hours", "double", "Hours since the latest timestamp (timestamp columns)."),
        _c("duplicate_keys", "integer", "Duplicated entity keys in the table."),
        _c("profiled_at", "timestamp", "When it was profiled (UTC).", not_null=True),
    )),
    TableSpec("predictions", "Scores written by batch scoring, SQL scoring and the REST server.", (
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("version", "integer", "Model version that scored.", not_null=True),
        _c("entity_key", "string", "Entity key value(s); JSON text when the key has several columns.",
           not_null=True),
        _c("snapshot_at", "timestamp", "Snapshot the features describe."),
        _c("score", "double", "Predicted probability (classification) or value (regression)."),
        _c("predicted_label", "string", "Predicted class at the version's threshold."),
        _c("batch_id", "string", "Scoring batch; re-running a batch replaces its rows.", not_null=True),
        _c("source", "string", "batch, sql or rest."),
        _c("scored_at", "timestamp", "When it was scored (UTC).", not_null=True),
    )),
    TableSpec("scoring_sql", "The SQL scoring query of each deployed model version, per SQL dialect: what the "
              "dbt macro dwml_predict renders. Written by `dwml deploy`.", (
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("version", "integer", "Model version.", not_null=True),
        _c("dialect", "string", "SQL dialect it was rendered for (the dbt adapter type, e.g. duckdb).", not_null=True),
        _c("status", "string", "ready, or unavailable when the version cannot be scored in SQL (see error).",
           not_null=True, accepted_values=("ready", "unavailable")),
        _c("query_sql", "string", "The whole scoring SELECT (key columns, score, predicted_label, model_name, "
           "version) with relation_placeholder in place of the relation to score."),
        _c("relation_placeholder", "string", "The quoted placeholder name in query_sql that stands for the relation."),
        _c("input_columns", "json", "The raw feature columns the query reads."),
        _c("key_columns", "json", "The entity key and timestamp columns passed through to the output."),
        _c("tree_nodes", "integer", "Tree nodes compiled (tree models)."),
        _c("sql_chars", "integer", "Length of query_sql in characters."),
        _c("sha256", "string", "sha256 of query_sql."),
        _c("error", "string", "Why the version cannot be scored in SQL (status unavailable)."),
        _c("compiled_at", "timestamp", "When it was compiled (UTC).", not_null=True),
    ), unique_key=("model_name", "version", "dialect")),
    TableSpec("drift_metrics", "Drift statistics per feature and of the score against the training reference.", (
        _c("drift_run_id", "string", "Id of the drift check.", not_null=True),
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("version", "integer", "Model version whose reference was used.", not_null=True),
        _c("feature", "string", "Feature, the score, or __dataset__ for the dataset-level verdict.", not_null=True),
        _c("statistic", "string", "psi, wasserstein_norm, ks, js_distance, unseen_share, missing_rate_change, "
           "drift_share.", not_null=True),
        _c("value", "double", "Value of the statistic."),
        _c("threshold", "double", "Threshold it was compared with."),
        _c("is_drift", "boolean", "Whether the value crossed the threshold."),
        _c("severity", "string", "none, moderate or major.", accepted_values=("none", "moderate", "major")),
        _c("reference_window", "string", "What the reference is (training run and period)."),
        _c("current_window", "string", "What was compared (relation and period)."),
        _c("computed_at", "timestamp", "When it was computed (UTC).", not_null=True),
    )),
    TableSpec("performance_metrics", "Model performance on matured labels, per time window.", (
        _c("evaluation_id", "string", "Id of the evaluation.", not_null=True),
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("version", "integer", "Model version.", not_null=True),
        _c("window_start", "timestamp", "Start of the window."),
        _c("window_end", "timestamp", "End of the window."),
        _c("metric", "string", "Metric name.", not_null=True),
        _c("value", "double", "Metric value."),
        _c("baseline", "double", "The training holdout value of the metric."),
        _c("is_degraded", "boolean", "Whether the value fell below the allowed floor."),
        _c("row_count", "integer", "Labelled rows in the window."),
        _c("computed_at", "timestamp", "When it was computed (UTC).", not_null=True),
    )),
    TableSpec("ab_tests", "Champion vs challenger comparisons on the same labelled rows.", (
        _c("test_id", "string", "Id of the comparison.", not_null=True),
        _c("model_name", "string", "Name of the ML model.", not_null=True),
        _c("champion_version", "integer", "Champion version.", not_null=True),
        _c("challenger_version", "integer", "Challenger version.", not_null=True),
        _c("metric", "string", "Metric compared."),
        _c("champion_value", "double", "Champion's metric."),
        _c("challenger_value", "double", "Challenger's metric."),
        _c("difference", "double", "Challenger minus champion."),
        _c("ci_low", "double", "Lower bound of the confidence interval of the difference."),
        _c("ci_high", "double", "Upper bound of the confidence interval of the difference."),
        _c("p_value", "double", "p-value of the significance test."),
        _c("method", "string", "Test used (paired bootstrap, DeLong, McNemar)."),
        _c("verdict", "string", "challenger_better, champion_better or no_difference."),
        _c("rule", "string", "The rule that gave the verdict."),
        _c("row_count", "integer", "Labelled rows compared."),
        _c("computed_at", "timestamp", "When it was computed (UTC).", not_null=True),
    )),
    TableSpec("audit_log", "Append-only log of every gate decision, override and change dwml makes.", (
        _c("event_id", "string", "Unique id of the event.", not_null=True),
        _c("occurred_at", "timestamp", "When it happened (UTC).", not_null=True),
        _c("actor", "string", "Who: user name, or the agent/tool caller.", not_null=True),
        _c("action", "string", "What was done, e.g. gate.quality, deploy, override.", not_null=True),
        _c("object_type", "string", "model, model_version, relation, ..."),
        _c("object_name", "string", "Name of the object."),
        _c("decision", "string", "pass, fail, refused, overridden, done."),
        _c("reasons", "json", "Why: failing checks, override reason."),
        _c("details", "json", "Anything else worth keeping."),
    )),
]}


# -- Python side: create and migrate ------------------------------------------------------

def column_type(logical: str) -> exp.DataType:
    return exp.DataType.build(LOGICAL_TYPES[logical][0])


def create_table_statement(spec: TableSpec, schema: str = DWML_SCHEMA) -> exp.Create:
    columns = [exp.ColumnDef(this=sqlmod.ident(c.name), kind=column_type(c.type)) for c in spec.columns]
    return exp.Create(
        this=exp.Schema(this=sqlmod.table(schema, spec.name), expressions=columns),
        kind="TABLE",
        exists=True,
    )


def add_column_statement(spec: TableSpec, col: Column, schema: str = DWML_SCHEMA) -> exp.Alter:
    return exp.Alter(
        this=sqlmod.table(schema, spec.name),
        kind="TABLE",
        actions=[exp.ColumnDef(this=sqlmod.ident(col.name), kind=column_type(col.type))],
    )


# a 'double' column of this type holds scores and metrics to 7 digits; DuckDB and PostgreSQL
# widen it in place (ALTER COLUMN ... TYPE), exactly, without rewriting other columns
_FOUR_BYTE_FLOATS = {"float", "float4", "real"}
_WIDENING_DIALECTS = {"duckdb", "postgres"}


def _narrow_doubles(warehouse, spec: TableSpec, columns: list[tuple[str, str]]) -> list[Column]:
    """'double' columns of `spec` that the table (its `columns`) holds as a 4-byte float
    (dbt-duckdb's dbt.type_float() made them so before dwml_double_type existed)."""
    if getattr(warehouse, "dialect", "") not in _WIDENING_DIALECTS:
        return []
    types = {name.lower(): str(dtype).lower().strip() for name, dtype in columns}
    return [c for c in spec.columns if c.type == "double" and types.get(c.name.lower()) in _FOUR_BYTE_FLOATS]


def widen_column_statement(spec: TableSpec, col: Column, schema: str = DWML_SCHEMA) -> exp.Alter:
    return exp.Alter(this=sqlmod.table(schema, spec.name), kind="TABLE",
                     actions=[exp.AlterColumn(this=sqlmod.ident(col.name), dtype=column_type(col.type))])


def ensure_tables(warehouse, schema: str = DWML_SCHEMA) -> dict[str, list[str]]:
    """Create dwml's schema and tables if missing; add columns the definition gained since.

    Idempotent. Existing rows are never touched: migration adds columns, and widens 'double'
    columns that an earlier dbt on-run-start declared as a 4-byte FLOAT (see _narrow_doubles).
    Returns {table: [columns added or widened]} for the tables that changed. A read-only
    warehouse (a read-only tool call) is left as it is: its readers see the tables as they are.
    """
    if getattr(warehouse, "read_only", False):
        return {}
    warehouse.create_schema(schema)
    # one query for every table's columns where the engine has it: a query per table cost about
    # as much as the rest of a listing command
    present = ({table.lower(): cols for table, cols in warehouse.schema_columns(schema).items()}
               if hasattr(warehouse, "schema_columns") else None)
    changes: dict[str, list[str]] = {}
    for spec in TABLES.values():
        columns = present.get(spec.name.lower(), []) if present is not None else warehouse.columns(schema, spec.name)
        existing = {name.lower() for name, _ in columns}
        if not existing:
            warehouse.execute(create_table_statement(spec, schema))
            changes[spec.name] = ["(created)"]
            continue
        added = []
        for col in spec.columns:
            if col.name.lower() not in existing:
                warehouse.execute(add_column_statement(spec, col, schema))
                added.append(col.name)
        for col in _narrow_doubles(warehouse, spec, columns):
            warehouse.execute(widen_column_statement(spec, col, schema))
            added.append(f"{col.name} (widened to double)")
        if added:
            changes[spec.name] = added
    return changes
