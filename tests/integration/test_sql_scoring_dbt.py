"""SQL scoring through dbt on the demo: a plain `dbt build` skips the scoring model before any
deploy; `dwml_predict` names the missing deployment; `dwml deploy --scaffold` writes a model that
builds and passes its tests on `dbt build`, with scores equal to TrainedModel.predict_score and to
batch scoring, logged into dwml.predictions by its post_hook; a deploy of another version and a
rollback change what `dbt run` scores with; a version that cannot be compiled still deploys and the
macro says why; hand edits are protected.

The project is copied into tmp_path first, so scaffolded models never land in the checkout."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.project import copy_project
from tests.conftest import duckdb_rows as query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCORES = "churn_scores"


def invoke(project, *args):
    return CliRunner().invoke(app, [*args, "--project-dir", str(project.project_dir), "--json"],
                              catch_exceptions=False)


def ok(project, *args) -> dict:
    result = invoke(project, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def expected_scores(project, path, version) -> dict:
    """{(customer_id, snapshot): predict_score} of a version over the whole feature table."""
    from dwml_py import model_registry as registry
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.training import TrainedModel
    from dwml_py.warehouse import connect

    with connect(project) as warehouse:
        row = registry.get_version(warehouse, "churn", version=version)
    model = TrainedModel.from_bytes(registry.load_model_bytes(ArtifactStore.for_project(project), row))
    con = duckdb.connect(str(path))
    try:
        table = con.sql("select * from main.customer_features").to_arrow_table()
    finally:
        con.close()
    keys = zip(table.column("customer_id").to_pylist(), (str(v)[:10] for v in table.column("snapshot_date").to_pylist()))
    return dict(zip(keys, model.predict_score(table).tolist()))


def dbt_scores(path) -> dict:
    rows = query(path, f"select customer_id, cast(snapshot_date as varchar), score, version from main.{SCORES}")
    return {(k, s[:10]): (score, v) for k, s, score, v in rows}


def max_diff(got: dict, expected: dict) -> float:
    assert set(got) == set(expected)
    return max(abs(got[k][0] - expected[k]) for k in expected)


@pytest.fixture
def demo_copy(demo_dir, tmp_path):
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.project import Project

    project = Project.locate(copy_project(demo_dir, tmp_path / "project"))
    generate_demo(project, DemoConfig(customers=1200, seed=4))
    return project


def test_dbt_scores_with_the_deployed_version(demo_copy, duckdb_path, monkeypatch):
    from dwml_py import sql_scoring
    from dwml_py.batch_scoring import predict
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.training_run import train

    project = demo_copy
    # -- a fresh warehouse: plain `dbt build` leaves the scoring model out (selectors.yml) ------
    build = run_dbt(project, ["build"])
    assert build.success, build.to_dict()
    assert SCORES not in {n.name for n in build.nodes} and "customer_features" in {n.name for n in build.nodes}

    # -- nothing deployed: the macro stops with what to run ----------------------------------
    assert train(project, "churn", params={"n_estimators": 60})["version"] == 1
    assert train(project, "churn", algorithm="random_forest", params={"n_estimators": 10})["version"] == 2
    undeployed = run_dbt(project, ["run", "--select", SCORES])
    assert not undeployed.success
    message = undeployed.failed_nodes[0].message
    assert "'churn' has no version deployed under the alias 'production'" in message
    assert "dwml deploy churn --version N" in message

    # -- the committed demo scoring model holds the name: a scaffold elsewhere is refused -----
    clash = invoke(project, "deploy", "churn", "--version", "1", "--scaffold", "--scaffold-dir", "models/ml_scoring")
    assert clash.exit_code == 1 and "models/scoring/churn_scores.sql" in clash.output, clash.output
    assert query(duckdb_path, "select count(*) from dwml.model_aliases")[0][0] == 0  # refused before any move
    shutil.rmtree(project.project_dir / "models/scoring")

    # -- deploy v1 with --scaffold: the scaffolded model builds and its tests pass -----------
    deployed = ok(project, "deploy", "churn", "--version", "1", "--scaffold", "--scaffold-dir", "models/ml_scoring")
    assert deployed["passed"] and deployed["sql_scoring"]["available"] is True
    assert deployed["sql_scoring"]["dialect"] == "duckdb" and deployed["sql_scoring"]["tree_nodes"] > 60
    scaffold = deployed["scaffold"]
    assert scaffold["model"] == SCORES and scaffold["keys"] == ["customer_id", "snapshot_date"]
    sql_path = project.project_dir / "models/ml_scoring/churn_scores.sql"
    assert scaffold["sql_path"] == str(sql_path) and "dwml.dwml_predict('churn', ref('customer_features')" in \
        sql_path.read_text()
    assert "post_hook=\"{{ dwml.dwml_log_predictions(['customer_id'], timestamp='snapshot_date') }}\"" in \
        sql_path.read_text()
    yml = (project.project_dir / "models/ml_scoring/churn_scores.yml").read_text()
    assert "dwml.values_within_range" in yml and "unique_combination_of_columns" in yml
    stored = query(duckdb_path, "select version, dialect, status, sql_chars from dwml.scoring_sql")
    assert [(v, d, s) for v, d, s, _ in stored] == [(1, "duckdb", "ready")] and stored[0][3] > 10_000

    built = run_dbt(project, ["build", "--select", SCORES])
    assert built.success, built.to_dict()
    tests = [n for n in built.nodes if n.resource_type == "test"]
    assert len(tests) >= 6 and all(n.status == "pass" for n in tests), [(n.name, n.status) for n in tests]
    v1 = expected_scores(project, duckdb_path, 1)
    first = dbt_scores(duckdb_path)
    assert max_diff(first, v1) < 1e-6 and {v for _, v in first.values()} == {1}
    # the post_hook logged them (tests/integration/test_sql_scores_logged.py checks the rows)
    assert query(duckdb_path, "select count(*) from dwml.predictions where source = 'sql'")[0][0] == len(first)
    labels = query(duckdb_path, f"select distinct predicted_label, model_name from main.{SCORES}")
    assert {m for _, m in labels} == {"churn"} and {lbl for lbl, _ in labels} <= {"0", "1"}

    # the SQL scores equal batch scoring's rows in dwml.predictions
    batch = predict(project, "churn", batch_id="compare")
    assert batch["rows"] == len(first)
    diff = query(duckdb_path, f"""select count(*), max(abs(s.score - p.score)) from main.{SCORES} s
        join dwml.predictions p on p.entity_key = cast(s.customer_id as varchar)
         and p.snapshot_at = cast(s.snapshot_date as timestamp) and p.batch_id = 'compare'""")
    assert diff[0][0] == len(first) and diff[0][1] < 1e-6

    # -- v2 (a random forest), then a rollback to v1: `dbt run` follows the alias -----------
    assert ok(project, "deploy", "churn", "--version", "2")["sql_scoring"]["available"] is True
    assert run_dbt(project, ["run", "--select", SCORES]).success
    second = dbt_scores(duckdb_path)
    assert max_diff(second, expected_scores(project, duckdb_path, 2)) < 1e-6
    assert {v for _, v in second.values()} == {2} and max_diff(second, v1) > 1e-3
    rollback = ok(project, "deploy", "churn", "--version", "1")
    assert rollback["reason"] == "rollback"
    assert run_dbt(project, ["run", "--select", SCORES]).success
    restored = dbt_scores(duckdb_path)
    assert restored == first

    # -- a version that cannot be compiled still deploys; the macro says why ----------------
    # (a context of its own: monkeypatch.undo() would also undo conftest's isolated environment)
    with monkeypatch.context() as patched:
        patched.setattr(sql_scoring, "MAX_TREE_NODES", 50)
        refused = ok(project, "deploy", "churn", "--version", "2")
    assert refused["passed"] and refused["version"] == 2 and refused["sql_scoring"]["available"] is False
    assert "tree nodes" in refused["sql_scoring"]["reason"]
    failed = run_dbt(project, ["run", "--select", SCORES])
    assert not failed.success and "cannot be scored in SQL" in failed.failed_nodes[0].message
    assert "dwml predict churn" in failed.failed_nodes[0].message

    # -- hand edits are protected: refused before the alias moves, --force overwrites ---------
    sql_path.write_text(sql_path.read_text() + "-- my edit\n")
    edited = invoke(project, "deploy", "churn", "--version", "1", "--scaffold", "--scaffold-dir", "models/ml_scoring")
    assert edited.exit_code == 1 and "--force" in edited.output and "Traceback" not in edited.output
    assert query(duckdb_path, "select version from dwml.model_aliases order by set_at desc limit 1") == [(2,)]
    forced = ok(project, "deploy", "churn", "--version", "1", "--scaffold", "--scaffold-dir", "models/ml_scoring",
                "--force")
    assert forced["scaffold"]["overwritten"] and "my edit" not in sql_path.read_text()
