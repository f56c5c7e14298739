"""evaluate_model finds the labels of predictions keyed by timestamps (with and without fractional
seconds), doubles, a boolean+integer pair and a date+timestamp pair, as it does for the integer
and text controls: batch scores (`dwml predict`) and SQL scores (a dbt model's post_hook
dwml_log_predictions) alike, each compared with scikit-learn on the same rows.

One small project for the module: a copy of this one with a feature model of ROWS rows that
declares one ML model per key type (labels in the feature model itself, no snapshot column)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from dwml_py.dbt_runner import run_dbt
from tests.conftest import DEMO_DIR, duckdb_rows, isolated_paths, shared_env, use_shared_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 160
CASES = {  # ML model -> entity columns
    "k_int": ["n"], "k_text": ["code"], "k_ts": ["ts"], "k_ts_frac": ["ts_frac"], "k_double": ["x"],
    "k_bool_int": ["flag", "grp"], "k_date_ts": ["d", "t"],
}

# Every key column (or pair) is unique; y depends on f1, so the version learns something.
FEATURES_SQL = f"""
{{{{ config(materialized='table') }}}}
select n,
       'c-' || n as code,
       timestamp '2024-03-05 10:00:00' + to_seconds(n) as ts,
       timestamp '2024-03-05 10:00:00' + to_seconds(n)
         + to_microseconds(case n % 4 when 0 then 0 when 1 then 500000 when 2 then 1 else 123456 end) as ts_frac,
       n / 2 as x,
       n % 2 = 0 as flag,
       n // 2 as grp,
       date '2024-01-01' + cast(n // 4 as integer) as d,
       timestamp '2024-03-05 10:00:00' + to_seconds(n)
         + to_microseconds(case n % 4 when 0 then 0 when 1 then 500000 when 2 then 1 else 123456 end) as t,
       sin(n) as f1,
       cos(n * 7) as f2,
       case when sin(n) + 0.6 * cos(n * 3) > 0 then 1 else 0 end as y
from range({ROWS}) as r(n)
"""

FEATURES_YML = """
version: 2
models:
  - name: key_features
    description: One row per key value of each type (the governance gate wants a description).
    config:
      meta:
        owner: dwml-tests
        classification: internal
        dwml:
          models:
{models}
    columns:
{columns}
"""

# A made-up score per row, logged by the post_hook as version 1 of the ML model (source 'sql').
SCORES_SQL = """
{{{{ config(materialized='table', post_hook="{{{{ dwml.dwml_log_predictions({entity!r}) }}}}") }}}}
select *, 1 / (1 + exp(-2 * f2 - f1)) as score, cast(n % 2 as varchar) as predicted_label,
       '{name}' as model_name, 1 as version
from {{{{ ref('key_features') }}}}
"""


def write_models(project) -> None:
    folder = project.project_dir / "models" / "key_types"
    folder.mkdir()
    (folder / "key_features.sql").write_text(FEATURES_SQL)
    models = "\n".join(f"            {name}: {{task: classification, label: y, entity: {entity}, "
                       "features: [f1, f2]}" for name, entity in CASES.items())
    columns = "\n".join(f"      - name: {c}\n        description: {c}" for c in
                        ["n", "code", "ts", "ts_frac", "x", "flag", "grp", "d", "t", "f1", "f2", "y"])
    (folder / "key_features.yml").write_text(FEATURES_YML.format(models=models, columns=columns))
    for name, entity in CASES.items():
        (folder / f"scores_{name}.sql").write_text(SCORES_SQL.format(entity=entity, name=name))


@pytest.fixture(scope="module")
def keys_env(tmp_path_factory):
    """The project built; every ML model trained (v1) and scored by `dwml predict`."""
    from dwml_py.batch_scoring import predict
    from dwml_py.project import Project, copy_project
    from dwml_py.training_run import train

    base = tmp_path_factory.mktemp("key_types")
    env = isolated_paths(base)
    with shared_env(env):
        project = Project.locate(copy_project(DEMO_DIR, base / "project"))
        write_models(project)
        run = run_dbt(project, ["run", "--select", "key_features"])
        assert run.success, run.to_dict()
        for name in CASES:
            assert train(project, name, algorithm="logistic")["version"] == 1
            assert predict(project, name, version=1)["rows"] == ROWS
    return {**env, "project": project}


@pytest.fixture
def keys(keys_env, monkeypatch):
    use_shared_env(monkeypatch, keys_env)
    return keys_env["project"]


def test_batch_scores_find_every_label(keys, keys_env):
    from dwml_py.batch_scoring import entity_keys
    from dwml_py.performance import evaluate_performance

    con = duckdb.connect(keys_env["DWML_DUCKDB_PATH"])
    try:
        table = con.sql("select * from main.key_features order by n").to_arrow_table()
        logged = {name: dict(con.sql("select entity_key, score from dwml.predictions where model_name = ? "
                                     "and source = 'batch'", params=[name]).fetchall()) for name in CASES}
    finally:
        con.close()
    labels = np.array(table.column("y").to_pylist())
    for name, entity in CASES.items():
        result = evaluate_performance(keys, name, version=1)
        assert result["rows"] == ROWS, (name, result["notes"])
        # each row's score, found by the exact text batch scoring wrote for its key
        score = np.array([logged[name][key] for key in entity_keys(table, entity).to_pylist()])
        assert result["overall"]["roc_auc"] == pytest.approx(roc_auc_score(labels, score), abs=1e-12), name
        assert result["overall"]["log_loss"] == pytest.approx(log_loss(labels, score), abs=1e-12), name


def test_sql_scores_find_every_label(keys, keys_env):
    from dwml_py.performance import evaluate_performance

    run = run_dbt(keys, ["run", "--select", *[f"scores_{name}" for name in CASES]])
    assert run.success, "\n".join(n.message for n in run.failed_nodes)
    features = duckdb_rows(keys_env["DWML_DUCKDB_PATH"],
                           "select y, 1 / (1 + exp(-2 * f2 - f1)) from main.key_features order by n")
    labels, made_up = np.array([r[0] for r in features]), np.array([r[1] for r in features])
    for name in CASES:
        stored = np.array([r[0] for r in duckdb_rows(keys_env["DWML_DUCKDB_PATH"], "select score from "
                           f"dwml.predictions where model_name = '{name}' and source = 'sql'")])
        # each logged score is its row's made-up one, to double precision (dwml.predictions.score is
        # DOUBLE whoever created it: dwml_double_type)
        row = np.abs(made_up[:, None] - stored[None, :]).argmin(axis=0)
        assert sorted(row.tolist()) == list(range(ROWS)) and np.abs(made_up[row] - stored).max() < 1e-12, name
        # the SQL batch is the newer: every row's latest score is the made-up one
        result = evaluate_performance(keys, name, version=1)
        assert result["rows"] == ROWS, (name, result["notes"])
        assert result["overall"]["roc_auc"] == pytest.approx(roc_auc_score(labels[row], stored), abs=1e-12), name
        assert result["overall"]["log_loss"] == pytest.approx(log_loss(labels[row], stored), abs=1e-12), name
    # the two writers' texts of x = 1.0 differ ('1' from pyarrow, '1.0' from DuckDB's cast in the
    # key macro): only the typed comparison joins both to the label row
    texts = duckdb_rows(keys_env["DWML_DUCKDB_PATH"], "select source, entity_key from dwml.predictions "
                        "where model_name = 'k_double' and entity_key in ('1', '1.0') order by source")
    assert texts == [("batch", "1"), ("sql", "1.0")]
