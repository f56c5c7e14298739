"""SQL scores reach dwml.predictions: `dbt run` of the demo's scoring model (its post_hook
dwml_log_predictions) writes one row per scored row with source 'sql', the model table's scores,
batch scoring's entity keys and snapshots; each run adds a batch; evaluate_model and score drift
read it; the var turns it off; a failing copy rolls the whole model back (dbt-duckdb runs
post-hooks inside the model's transaction). Key texts of every common type, single and
composite (with a hostile column name), equal batch_scoring.entity_keys.

One demo warehouse for the module, in a copy of the project (the key probes add models to it)."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dwml_py.dbt_runner import run_dbt
from tests.conftest import DEMO_DIR, duckdb_rows, isolated_paths, shared_env, use_shared_env
from dwml_py.tracking import utcnow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCORES = "churn_scores"
HOSTILE = 'we"ird key'  # a column name that must be quoted in SQL and escaped in JSON
HOSTILE_SQL = '"we""ird key"'
OFF = ["--vars", "{dwml: {scoring: {log_predictions: false}}}"]

# Key probes: models whose post_hook logs made-up scores keyed by columns of each type.
PROBE_ROWS = """
  select * from (values
    (1, 42::bigint, 'a''b "c" \\ d', date '2024-03-05', timestamp '2024-03-05 01:02:03', true, 12.50::decimal(10, 2)),
    (2, -7::bigint, 'plain', date '1999-12-31', timestamp '2024-03-05 01:02:03.5', false, 0.05::decimal(10, 2)),
    (3, 0::bigint, null, date '2024-02-29', timestamp '2024-12-31 23:59:59.000001', null, -1.00::decimal(10, 2))
  ) as t(n, k_int, k_text, k_date, k_ts, k_bool, k_dec)
"""
PROBES = {  # probe model -> entity columns
    "probe_int": ["k_int"], "probe_text": ["k_text"], "probe_date": ["k_date"], "probe_ts": ["k_ts"],
    "probe_bool": ["k_bool"], "probe_dec": ["k_dec"],
    "probe_composite": ["k_int", HOSTILE, "k_date", "k_ts", "k_bool", "k_dec"],
}


def probe_sql(entity: list[str]) -> str:
    hook = "{{ dwml.dwml_log_predictions(" + repr(entity) + ", timestamp='k_ts') }}"
    return (f"{{{{ config(materialized='table', tags=['dwml_scoring'], post_hook={hook!r}) }}}}\n"
            f"select n, k_int, k_text, k_text as {HOSTILE_SQL}, k_date, k_ts, k_bool, k_dec,\n"
            "       n / 10.0 as score, cast(n % 2 as varchar) as predicted_label, 'probe' as model_name,\n"
            "       1 as version\n"
            f"from ({PROBE_ROWS}) as rows\n")


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    """The demo in a copy of the project, built; churn v1 (xgboost) trained and deployed; probe models added."""
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.deployment import deploy
    from dwml_py.project import Project, copy_project
    from dwml_py.training_run import train

    base = tmp_path_factory.mktemp("sql_scores_logged")
    env = isolated_paths(base)
    with shared_env(env):
        project = Project.locate(copy_project(DEMO_DIR, base / "project"))
        probes = project.project_dir / "models" / "probes"
        probes.mkdir()
        for name, entity in PROBES.items():
            (probes / f"{name}.sql").write_text(probe_sql(entity))
        generate_demo(project, DemoConfig(customers=600, seed=5))
        assert run_dbt(project, ["build"]).success
        assert train(project, "churn", params={"n_estimators": 30})["version"] == 1
        deploy(project, "churn", 1)
    return {**env, "project": project}


@pytest.fixture
def demo(demo_env, monkeypatch):
    use_shared_env(monkeypatch, demo_env)
    return demo_env["project"]


def sql(demo_env, query):
    return duckdb_rows(demo_env["DWML_DUCKDB_PATH"], query)


def dbt_run(project, *args) -> str:
    """`dbt run --select SCORES`; returns its invocation id."""
    run = run_dbt(project, ["run", "--select", SCORES, *args])
    assert run.success, run.to_dict()
    return json.loads((project.target_dir / "run_results.json").read_text())["metadata"]["invocation_id"]


def sql_batches(demo_env) -> dict[str, int]:
    return dict(sql(demo_env, "select batch_id, count(*) from dwml.predictions where source = 'sql' "
                              "and model_name = 'churn' group by batch_id"))


def test_dbt_run_logs_the_scores_and_monitoring_reads_them(demo, demo_env):
    from dwml_py.drift import detect_drift
    from dwml_py.performance import evaluate_performance

    before = utcnow()
    invocation = dbt_run(demo)
    after = utcnow()
    batch = f"dbt:{invocation}:{SCORES}"
    assert sql_batches(demo_env) == {batch: sql(demo_env, f"select count(*) from main.{SCORES}")[0][0]}

    # every row of the model table, once, with its own score, version, label and snapshot
    joined = sql(demo_env, f"""
        select count(*), count(distinct (p.entity_key, p.snapshot_at)), max(abs(p.score - s.score)),
               count(*) filter (where p.version = s.version and p.model_name = s.model_name
                                and p.predicted_label = s.predicted_label),
               min(p.scored_at), max(p.scored_at), count(distinct p.scored_at)
        from dwml.predictions p join main.{SCORES} s
          on p.entity_key = cast(s.customer_id as varchar) and p.snapshot_at = cast(s.snapshot_date as timestamp)
        where p.batch_id = '{batch}'""")[0]
    rows = sql(demo_env, f"select count(*) from main.{SCORES}")[0][0]
    assert joined[:4] == (rows, rows, 0.0, rows)
    assert before <= joined[4] == joined[5] <= after and joined[6] == 1  # one UTC time per batch

    # evaluate_model joins the SQL batch (the only predictions yet) to the labels: the same rows
    # and AUC as an independent join scored by scikit-learn
    pairs = sql(demo_env, f"""
        select p.score, l.churned_30d from dwml.predictions p join main.customer_labels l
          on p.entity_key = cast(l.customer_id as varchar) and p.snapshot_at = cast(l.snapshot_date as timestamp)
        where p.batch_id = '{batch}' and l.churned_30d is not null""")
    evaluated = evaluate_performance(demo, "churn", version=1)
    assert evaluated["rows"] == len(pairs) > 100
    score, label = np.array([p[0] for p in pairs]), np.array([int(p[1]) for p in pairs])
    assert evaluated["overall"]["roc_auc"] == pytest.approx(roc_auc_score(label, score), abs=1e-12)

    # score drift reads the latest batch: the SQL one
    drift = detect_drift(demo, "churn", version=1)
    assert drift["score"]["rows"] == rows and repr(batch) in drift["score"]["current_window"]


def test_keys_and_snapshots_equal_batch_scoring(demo, demo_env):
    from dwml_py.batch_scoring import predict

    invocation = dbt_run(demo)
    predict(demo, "churn", version=1, batch_id="compare")
    both = sql(demo_env, f"""
        with s as (select entity_key, snapshot_at, score from dwml.predictions
                   where batch_id = 'dbt:{invocation}:{SCORES}'),
             b as (select entity_key, snapshot_at, score from dwml.predictions where batch_id = 'compare')
        select (select count(*) from s), (select count(*) from b), count(*), max(abs(s.score - b.score))
        from s join b using (entity_key, snapshot_at)""")[0]
    assert both[0] == both[1] == both[2] > 0 and both[3] < 1e-6


def test_each_run_adds_a_batch_and_the_var_turns_it_off(demo, demo_env):
    earlier = sql_batches(demo_env)
    invocation = dbt_run(demo)
    now = sql_batches(demo_env)
    rows = sql(demo_env, f"select count(*) from main.{SCORES}")[0][0]
    assert now == {**earlier, f"dbt:{invocation}:{SCORES}": rows} and len(now) == len(earlier) + 1

    dbt_run(demo, *OFF)
    assert sql_batches(demo_env) == now


def test_key_texts_equal_batch_scoring(demo, demo_env):
    from dwml_py.batch_scoring import entity_keys
    from dwml_py.performance import _key_match

    run = run_dbt(demo, ["run", "--select", *PROBES])
    assert run.success, "\n".join(n.message for n in run.failed_nodes)
    con = duckdb.connect(demo_env["DWML_DUCKDB_PATH"])
    try:
        for name, entity in PROBES.items():
            table = con.sql(f"select * from main.{name} order by n").to_arrow_table()
            batch = f"%:{name}"
            logged = con.sql("select entity_key, snapshot_at from dwml.predictions where batch_id like ? "
                             "order by score", params=[batch]).fetchall()
            expected = entity_keys(table, entity).to_pylist()
            assert [k for k, _ in logged] == expected, name
            assert [s for _, s in logged] == table.column("k_ts").to_pylist(), name
            if len(entity) > 1:
                # the evaluation's join reads each column back (timestamps without a fraction: the
                # engine's text of '...03.5' is not Python's '...03.500000')
                on = _key_match(entity, "p").sql("duckdb")
                matched = con.sql(f"select count(*) from dwml.predictions p join main.{name} l on {on} "
                                  "where p.batch_id like ? and l.k_text is not null",
                                  params=[batch]).fetchall()[0][0]
                assert matched == 1, on  # row 1 (row 3 has a NULL text, row 2 a fractional timestamp)
    finally:
        con.close()


def test_a_failing_copy_leaves_the_previous_table_and_no_rows(demo, demo_env):
    """dbt-duckdb runs post-hooks between the model's BEGIN and COMMIT: the insert failing rolls
    back the new table too."""
    dbt_run(demo)
    before = sql(demo_env, f"select count(*), sum(score) from main.{SCORES}")[0]
    batches = sql_batches(demo_env)
    con = duckdb.connect(demo_env["DWML_DUCKDB_PATH"])
    try:  # a changed feature table (the new scores would differ) and a predictions table refusing every row
        con.sql("delete from main.customer_features where customer_id % 2 = 0")
        con.sql("alter table dwml.predictions rename to predictions_kept")
        con.sql("create table dwml.predictions (model_name varchar, version bigint, entity_key varchar, "
                "snapshot_at timestamp, score double check (score < 0), predicted_label varchar, batch_id varchar, "
                "source varchar, scored_at timestamp)")
    finally:
        con.close()
    try:
        failed = run_dbt(demo, ["run", "--select", SCORES])
        assert not failed.success and "CHECK constraint" in failed.failed_nodes[0].message, failed.to_dict()
        assert sql(demo_env, f"select count(*), sum(score) from main.{SCORES}")[0] == before
        assert sql(demo_env, "select count(*) from dwml.predictions")[0][0] == 0
        leftovers = sql(demo_env, "select table_name from information_schema.tables "
                                  f"where table_name like '{SCORES}__dbt%'")
        assert leftovers == []
    finally:
        con = duckdb.connect(demo_env["DWML_DUCKDB_PATH"])
        try:
            con.sql("drop table dwml.predictions")
            con.sql("alter table dwml.predictions_kept rename to predictions")
        finally:
            con.close()
    assert sql_batches(demo_env) == batches
