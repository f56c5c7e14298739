"""create_feature_pipeline on the hand-made catalog of test_feature_suggestions: the SQL it writes
runs, is point-in-time correct and keeps the grain; hand-edited files are not overwritten."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml

from dwml_py.catalog import Catalog
from dwml_py.errors import InputError
from dwml_py.feature_pipeline import create_pipeline, edited_by_hand, with_header, write_files
from tests.unit.test_feature_suggestions import build_warehouse, manifest


@pytest.fixture
def world(tmp_path):
    wh = build_warehouse()
    cat = Catalog.from_dicts(manifest(), warehouse=wh)
    project = SimpleNamespace(project_dir=tmp_path, config={"model-paths": ["models"]})
    yield project, cat, wh
    wh.close()


def _run(wh, sql_text: str):
    """Execute generated model SQL: ref('x') becomes the table, config() goes away."""
    body = re.sub(r"\{\{ config\(.*?\) \}\}", "", sql_text)
    body = re.sub(r"\{\{ ref\('(\w+)'\) \}\}", r'"memory"."main"."\1"', body)
    return wh.con.sql(body)


def test_pipeline_sql_is_point_in_time_and_keeps_the_grain(world):
    project, cat, wh = world
    result = create_pipeline(project, cat, wh, "churn_pipe", "labels.churned",
                             columns=["feats.signal", "events.amount", "customers.segment", "customers.email"])
    sql_text = (project.project_dir / "models/features/churn_pipe.sql").read_text()
    assert "{{ ref('events') }}" in sql_text and "{{ ref('labels') }}" in sql_text
    assert [c["join"] for c in result["columns"]] == ["snapshot", "as_of", "as_of", "as_of"]
    assert any(w.startswith("PII: customers.email") for w in result["warnings"])
    rows = _run(wh, sql_text).fetchall()
    labels = wh.con.sql("select count(*) from main.labels").fetchall()[0][0]
    assert len(rows) == labels == len({(r[0], r[1]) for r in rows})
    # the amount joined is the one of the event 5 days before each snapshot, never a later one
    joined = _run(wh, sql_text).to_arrow_table().to_pylist()
    expected = {(r[0], r[1]): r[2] for r in wh.con.sql(
        "select customer_id, cast(event_at + interval 5 day as date), amount from main.events").fetchall()}
    assert all(abs(row["amount"] - expected[(row["customer_id"], row["snapshot_date"])]) < 1e-9 for row in joined)

    spec = yaml.safe_load((project.project_dir / "models/features/churn_pipe.yml").read_text())
    model = spec["models"][0]
    assert model["config"]["meta"]["dwml"] == {
        "entity": "customer_id", "timestamp": "snapshot_date",
        "models": {"churn": {"task": "classification", "label": {"model": "labels", "column": "churned"}}}}
    assert model["data_tests"][0]["dwml.unique_combination_of_columns"]["arguments"]["combination_of_columns"] == [
        "customer_id", "snapshot_date"]
    columns = {c["name"]: c for c in model["columns"]}
    assert columns["customer_id"]["data_tests"] == ["not_null"]
    assert columns["signal"]["description"].startswith("A real signal.")
    assert columns["email"]["config"]["meta"] == {"pii": True}  # PII marking travels with the column


def test_clashing_names_get_the_source_as_prefix(world):
    project, cat, wh = world
    wh.con.sql("create table main.more as select customer_id, snapshot_date, noise * 2 as signal from main.feats")
    raw = manifest()
    raw["nodes"]["model.p.more"] = {**raw["nodes"]["model.p.events"], "unique_id": "model.p.more", "name": "more",
                                    "alias": "more", "columns": {c: {"name": c} for c in ("customer_id", "snapshot_date", "signal")}}
    cat = Catalog.from_dicts(raw, warehouse=wh)
    result = create_pipeline(project, cat, wh, "clash", "labels.churned", columns=["feats.signal", "more.signal"])
    assert [c["name"] for c in result["columns"]] == ["feats__signal", "more__signal"]


def test_hand_edited_files_are_kept_unless_forced(world):
    project, cat, wh = world
    args = dict(columns=["feats.signal"])
    create_pipeline(project, cat, wh, "pipe", "labels.churned", **args)
    path = project.project_dir / "models/features/pipe.sql"
    create_pipeline(project, cat, wh, "pipe", "labels.churned", **args)  # unchanged: regenerated silently
    path.write_text(path.read_text() + "-- my change\n")
    with pytest.raises(InputError) as caught:
        create_pipeline(project, cat, wh, "pipe", "labels.churned", **args)
    assert "pipe.sql" in caught.value.message and "edited" in caught.value.message and "--force" in caught.value.hint
    result = create_pipeline(project, cat, wh, "pipe", "labels.churned", force=True, **args)
    assert str(path) in result["overwritten"] and "my change" not in path.read_text()


def test_checksum_header_round_trip(tmp_path):
    path = tmp_path / "m.sql"
    assert edited_by_hand(path) is None
    path.write_text("select 1\n")
    assert "did not generate" in edited_by_hand(path)
    with pytest.raises(InputError, match="Refusing to overwrite"):
        write_files({path: with_header("select 2\n", "--", "test")}, force=False)
    write_files({path: with_header("select 2\n", "--", "test")}, force=True)
    assert edited_by_hand(path) is None


def test_bad_inputs_say_what_to_do(world):
    project, cat, wh = world
    with pytest.raises(InputError, match="not a valid dbt model name"):
        create_pipeline(project, cat, wh, "bad-name", "labels.churned", columns=["feats.signal"])
    with pytest.raises(InputError, match="model-paths"):
        create_pipeline(project, cat, wh, "ok", "labels.churned", columns=["feats.signal"], directory="analyses")
    with pytest.raises(InputError, match="No columns"):
        create_pipeline(project, cat, wh, "ok", "labels.churned")
    with pytest.raises(InputError, match="already exists"):
        create_pipeline(project, cat, wh, "feats", "labels.churned", columns=["feats.signal"])
    with pytest.raises(InputError, match="target itself"):
        create_pipeline(project, cat, wh, "ok", "labels.churned", columns=["labels.churned"])


def test_from_suggestion_takes_unflagged_top_columns(world):
    project, cat, wh = world
    result = create_pipeline(project, cat, wh, "auto", "labels.churned", from_suggestion=True, top=2)
    assert len(result["columns"]) == 2 and result["suggestion"]["sample"]["rows"] > 0
    assert not {"risk_flag", "contact_email", "row_key"} & {c["name"] for c in result["columns"]}
    sql_text = (project.project_dir / "models/features/auto.sql").read_text()
    assert len(_run(wh, sql_text).fetchall()) == 480
