"""`dwml deploy` and `dwml predict` on the demo: alias moves with history, rollback restoring the
earlier version's predictions, batch scoring equal to TrainedModel.predict_score, idempotent
batches, a schema change naming the missing column, and a governance refusal moving nothing."""

import json

import duckdb
import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo
from tests.conftest import duckdb_execute as execute, duckdb_rows as rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def ok(*args) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def scores_of(path, batch_id):
    found = rows(path, "select entity_key, cast(snapshot_at as date)::varchar, score, version from dwml.predictions "
                       f"where batch_id = '{batch_id}'")
    return {(k, s): (score, v) for k, s, score, v in found}


def load_version(project, version):
    from dwml_py import model_registry as registry
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.training import TrainedModel
    from dwml_py.warehouse import connect

    with connect(project) as warehouse:
        row = registry.get_version(warehouse, "churn", version=version)
    return TrainedModel.from_bytes(registry.load_model_bytes(ArtifactStore.for_project(project), row))


def expected_scores(project, path, version):
    """{(entity_key, snapshot): score} computed by TrainedModel.predict_score on the whole feature table."""
    model = load_version(project, version)
    spec = model.spec
    entity, ts = spec["entity"][0], spec["timestamp"]
    con = duckdb.connect(str(path))
    try:
        table = con.sql(f'select * from "{spec["feature_schema"]}"."{spec["feature_table"]}"').to_arrow_table()
    finally:
        con.close()
    scores = model.predict_score(table)
    keys = zip((str(v) for v in table.column(entity).to_pylist()), (str(v)[:10] for v in table.column(ts).to_pylist()))
    return dict(zip(keys, scores.tolist())), f'{spec["feature_schema"]}.{spec["feature_table"]}', model


def test_deploy_rollback_and_idempotent_batch_scoring(project, duckdb_path, monkeypatch):
    from dwml_py.training_run import train

    generate_demo(project, DemoConfig(customers=1200, seed=4))
    assert run_dbt(project, ["build"]).success
    assert train(project, "churn", params={"n_estimators": 60})["version"] == 1

    # -- deploy v1 -------------------------------------------------------------------------------
    deployed = ok("deploy", "churn", "--version", "1")
    assert deployed["alias"] == "production" and deployed["version"] == 1 and deployed["passed"] is True
    assert deployed["previous_version"] is None and deployed["governance"]["decision"] == "pass"
    assert deployed["reference_rows"] > 1 and deployed["audit_event_id"]

    # -- batch scoring equals predict_score, in bounded batches ---------------------------------
    expected_v1, relation, model_v1 = expected_scores(project, duckdb_path, 1)
    first = ok("predict", "churn", "--batch-id", "daily", "--batch-size", "1000")
    n = len(expected_v1)
    assert first["version"] == 1 and first["relation"] == relation
    assert first["rows"] == n and first["replaced_rows"] == 0 and first["batches"] >= n // 1000
    scored = scores_of(duckdb_path, "daily")
    assert len(scored) == n == rows(duckdb_path, "select count(*) from dwml.predictions")[0][0]
    assert max(abs(scored[k][0] - expected_v1[k]) for k in expected_v1) < 1e-9
    meta = rows(duckdb_path, "select distinct model_name, version, source, predicted_label from dwml.predictions")
    assert {(m, v, s) for m, v, s, _ in meta} == {("churn", 1, "batch")}
    labels = {lbl for *_, lbl in meta}
    assert labels <= {str(c) for c in model_v1.classes} and labels

    # -- the same batch again replaces it, never duplicates it ----------------------------------
    again = ok("predict", "churn", "--batch-id", "daily")
    assert again["rows"] == n and again["replaced_rows"] == n
    assert rows(duckdb_path, "select count(*) from dwml.predictions")[0][0] == n

    # -- a run failing half-way leaves the batch's previous rows and drops its staging table -----
    from dwml_py import batch_scoring

    real, calls = batch_scoring._scored_rows, []

    def fail_on_the_third_batch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("scoring failed half-way")
        return real(*args)

    before = scores_of(duckdb_path, "daily")
    monkeypatch.setattr(batch_scoring, "_scored_rows", fail_on_the_third_batch)
    with pytest.raises(RuntimeError, match="half-way"):
        batch_scoring.predict(project, "churn", batch_id="daily", batch_size=300)
    monkeypatch.setattr(batch_scoring, "_scored_rows", real)
    assert len(calls) == 3 and scores_of(duckdb_path, "daily") == before
    assert rows(duckdb_path, "select count(*) from information_schema.tables where table_name like '%staging%'") \
        == [(0,)]

    # -- v2 deployed, then a rollback to v1 ------------------------------------------------------
    assert train(project, "churn", params={"n_estimators": 20, "max_depth": 2})["version"] == 2
    second = ok("deploy", "churn", "--version", "2")
    assert second["version"] == 2 and second["previous_version"] == 1 and second["reason"] is None
    on_v2 = ok("predict", "churn", "--batch-id", "daily")
    assert on_v2["version"] == 2 and on_v2["replaced_rows"] == n
    v2_scores = scores_of(duckdb_path, "daily")
    assert {v for _, v in v2_scores.values()} == {2}
    assert max(abs(v2_scores[k][0] - expected_v1[k]) for k in expected_v1) > 1e-6  # a different model

    rollback = ok("deploy", "churn", "--version", "1")
    assert rollback["previous_version"] == 2 and rollback["reason"] == "rollback"
    history = rows(duckdb_path, "select version, previous_version, reason from dwml.model_aliases "
                                "where model_name = 'churn' and alias = 'production' order by set_at")
    assert history == [(1, None, None), (2, 1, None), (1, 2, "rollback")]
    after = ok("predict", "churn", "--batch-id", "daily")
    assert after["version"] == 1
    restored = scores_of(duckdb_path, "daily")
    assert max(abs(restored[k][0] - scored[k][0]) for k in scored) < 1e-12 and len(restored) == n
    assert rows(duckdb_path, "select count(*) from dwml.predictions")[0][0] == n
    plain = invoke("predict", "churn", "--batch-id", "daily")  # the human-readable result renders too
    assert plain.exit_code == 0 and "daily" in plain.output, plain.output
    events = rows(duckdb_path, "select decision from dwml.audit_log where action = 'deploy'")
    assert [d for (d,) in events] == ["done"] * 3

    # the default batch id is per version and relation; --version overrides the alias
    pinned = ok("predict", "churn", "--version", "2")
    assert pinned["batch_id"] == f"churn-v2-{relation}" and pinned["version"] == 2 and pinned["rows"] == n

    # -- a relation missing a feature column: exit 1 naming it ----------------------------------
    dropped = model_v1.feature_names[0]
    schema, table = relation.split(".")
    execute(duckdb_path, f'create table "{schema}"."scoring_broken" as select * exclude ("{dropped}") '
                         f'from "{schema}"."{table}"')
    broken = invoke("predict", "churn", "--relation", f"{schema}.scoring_broken")
    assert broken.exit_code == 1, broken.output
    assert dropped in broken.output and "Traceback" not in broken.output

    # -- governance now refuses the features: exit 2, nothing moved -----------------------------
    from dwml_py import governance

    strict = governance.resolve_policy

    def public_only(config):
        return {**strict(config), "max_feature_classification": "public"}

    monkeypatch.setattr(governance, "resolve_policy", public_only)
    refused = invoke("deploy", "churn", "--version", "2", "--json")
    assert refused.exit_code == 2, refused.output
    body = json.loads(refused.stdout)
    assert body["passed"] is False and body["governance"]["violations"]
    assert rows(duckdb_path, "select version from dwml.model_aliases where alias = 'production' "
                             "order by set_at desc limit 1") == [(1,)]
    assert ("refused",) in rows(duckdb_path, "select decision from dwml.audit_log where action = 'deploy'")
