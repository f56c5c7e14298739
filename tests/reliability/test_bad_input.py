"""Bad input gets a clear error naming what was wrong and how to fix it, never a traceback, and
leaves nothing half-written (issue 12, point 1). Each case is listed in docs/reliability.md."""

from __future__ import annotations

import pytest

from tests.reliability.helpers import FAST_XGBOOST, invoke, ok, sql_exec, sql_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTILE_COLUMN = 'a"; drop table main.customer_features; --'


def fails(*args: str, code: int = 1) -> str:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "Error:" in result.output and "Hint:" in result.output, result.output
    return result.output


def versions(demo) -> list[int]:
    return [v for (v,) in sql_rows(demo["DWML_DUCKDB_PATH"], "select version from dwml.model_versions order by 1")]


def run_statuses(demo) -> list[str]:
    return [s for (s,) in sql_rows(demo["DWML_DUCKDB_PATH"], "select status from dwml.runs order by started_at")]


def test_missing_manifest_says_to_run_dbt_parse(demo):
    (demo["DBT_TARGET_PATH"] / "manifest.json").unlink()
    out = fails("catalog", "search", "churn")
    assert "No dbt manifest" in out and "dbt parse" in out


def test_half_written_manifest_is_named_as_damaged(demo):
    manifest = demo["DBT_TARGET_PATH"] / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:5000])
    out = fails("catalog", "search", "churn")
    assert "not valid JSON" in out and "dbt parse" in out


def test_unknown_model_and_column_names_get_did_you_mean(demo):
    assert "did you mean 'churn'" in fails("train", "chrun")
    assert "did you mean 'tenure_days'" in fails("catalog", "lineage", "customer_features.tenure_dayz")
    assert "did you mean 'customer_features'" in fails("profile", "customer_featurez")
    out = fails("deploy", "churn", "--version", "7")
    assert "no version 7" in out and "versions are 1" in out


def test_hostile_identifiers_are_quoted_not_executed(demo):
    path = demo["DWML_DUCKDB_PATH"]
    sql_exec(path, 'create schema "we;ird"')
    sql_exec(path, f'create table "we;ird"."t""x" as select tenure_days as "{HOSTILE_COLUMN.replace(chr(34), chr(34) * 2)}", '
                   'plan_code as "sp ace" from main.customer_features')
    before = sql_rows(path, "select count(*) from main.customer_features")
    profile = ok("profile", 'we;ird.t"x')
    assert {c["name"] for c in profile["columns"]} == {HOSTILE_COLUMN, "sp ace"}
    out = fails("drift", "churn", "--relation", 'we;ird.t"x')
    assert "lacks column(s)" in out and "monthly_price" in out
    assert sql_rows(path, "select count(*) from main.customer_features") == before  # nothing was dropped


def test_empty_tables(demo):
    path = demo["DWML_DUCKDB_PATH"]
    sql_exec(path, "create table main.empty_features as select * from main.customer_features limit 0")
    profile = ok("profile", "empty_features")
    assert profile["row_count"] == 0
    scored = ok("predict", "churn", "--relation", "empty_features")
    assert scored["rows"] == 0
    assert "has no rows" in fails("drift", "churn", "--relation", "empty_features")
    # An emptied feature model: training refuses before anything is registered.
    sql_exec(path, "delete from main.customer_features")
    result = invoke("train", "churn", *FAST_XGBOOST)
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert versions(demo) == [1]


def test_single_class_target_refused_and_no_version_registered(demo):
    sql_exec(demo["DWML_DUCKDB_PATH"], "update main.customer_labels set churned_30d = 0")
    out = fails("train", "churn", *FAST_XGBOOST)
    assert "single class" in out
    assert versions(demo) == [1]
    assert run_statuses(demo)[-1] == "failed"


def test_all_null_feature_is_named(demo):
    sql_exec(demo["DWML_DUCKDB_PATH"], "update main.customer_features set usage_trend_30d = null")
    out = fails("train", "churn", *FAST_XGBOOST, code=2)  # the quality gate's null-rate threshold
    assert "usage_trend_30d is 100.0% null" in out
    # Forced past the gate, training itself names the column.
    out = fails("train", "churn", *FAST_XGBOOST, "--override", "quality", "--reason", "reliability test")
    assert "usage_trend_30d" in out and "NULL in every one" in out
    assert versions(demo) == [1]


def test_infinity_is_named_and_nan_means_missing(demo):
    path = demo["DWML_DUCKDB_PATH"]
    sql_exec(path, "create table main.nan_features as select * replace (case when hash(customer_id) % 4 = 0 "
                   "then 'nan'::double else payment_amount_90d end as payment_amount_90d) from main.customer_features")
    scored = ok("predict", "churn", "--relation", "nan_features")
    assert scored["rows"] == sql_rows(path, "select count(*) from main.nan_features")[0][0]
    assert sql_rows(path, "select count(*) from dwml.predictions where batch_id = 'churn-v1-main.nan_features' "
                          "and (score is null or isnan(score))") == [(0,)]

    sql_exec(path, "create table main.inf_features as select * replace (case when hash(customer_id) % 9 = 0 "
                   "then 'inf'::double else payment_amount_90d end as payment_amount_90d) from main.customer_features")
    out = fails("predict", "churn", "--relation", "inf_features")
    assert "payment_amount_90d" in out and "infinite" in out
    assert sql_rows(path, "select count(*) from dwml.predictions where batch_id = 'churn-v1-main.inf_features'") == [(0,)]

    sql_exec(path, "update main.customer_features set payment_amount_90d = 'inf'::double where hash(customer_id) % 9 = 0")
    out = fails("train", "churn", *FAST_XGBOOST)
    assert "payment_amount_90d" in out and "infinite" in out
    assert versions(demo) == [1]


def test_unseen_category_at_scoring_is_scored_like_an_unknown(demo):
    path = demo["DWML_DUCKDB_PATH"]
    sql_exec(path, "create table main.unseen as select * replace ('ZZ' as country_code, 'Atlantis' as city) "
                   "from main.customer_features")
    sql_exec(path, "create table main.unknown as select * replace (null::varchar as country_code, "
                   "'Nowhere' as city) from main.customer_features")
    assert ok("predict", "churn", "--relation", "unseen")["rows"] > 0
    ok("predict", "churn", "--relation", "unknown")
    # country_code had no missing values in training, so NULL is as unknown to the model as 'ZZ',
    # and both unseen cities get the same "unknown" code: the scores must be identical.
    diff = sql_rows(path, "select max(abs(a.score - b.score)), count(*) from dwml.predictions a join dwml.predictions b "
                          "using (entity_key, snapshot_at) where a.batch_id = 'churn-v1-main.unseen' "
                          "and b.batch_id = 'churn-v1-main.unknown'")
    assert diff[0][1] > 0 and diff[0][0] < 1e-12


def test_schema_changed_between_training_and_scoring_names_the_columns(demo):
    path = demo["DWML_DUCKDB_PATH"]
    sql_exec(path, "create table main.changed as select * exclude (monthly_price, plan_code) from main.customer_features")
    out = fails("predict", "churn", "--relation", "changed")
    assert "monthly_price" in out and "plan_code" in out
    sql_exec(path, "create table main.retyped as select * replace ('n/a' as monthly_price) from main.customer_features")
    out = fails("predict", "churn", "--relation", "retyped")
    assert "monthly_price" in out and "numeric" in out
    assert sql_rows(path, "select count(*) from dwml.predictions where batch_id in "
                          "('churn-v1-main.changed', 'churn-v1-main.retyped')") == [(0,)]


# -- issue 18, point 6: each a one-line error instead of an unexpected exception or a silent default --

def test_numbers_and_texts_beyond_their_declared_limits_are_refused(demo):
    """`list_runs {"limit": 10**20}` over MCP ended in "unexpected ConversionException"; `--relation ''`
    and `--batch-id ''` fell back to the defaults; a 5,000-character batch id was stored."""
    from dwml_py.call_context import CallContext
    from dwml_py.errors import InputError
    from dwml_py.project import Project
    from dwml_py.tools.registry import load_tools

    path = demo["DWML_DUCKDB_PATH"]
    with pytest.raises(InputError, match="'limit' must be from 1 to 10,000, got 100000000000000000000"):
        load_tools()["list_runs"].invoke(Project.locate(), {"limit": 10**20}, context=CallContext(agent=True))
    assert "'limit' must be from 1 to 10,000" in fails("runs", "list", "--limit", str(10**20))
    assert "'relation' must not be empty" in fails("predict", "churn", "--relation", "")
    assert "'batch_id' must not be empty" in fails("predict", "churn", "--batch-id", "")
    out = fails("predict", "churn", "--batch-id", "b" * 5000)
    assert "'batch_id' is 5,000 characters long; the limit is 256" in out
    assert "'seed' must be from 0" in fails("train", "churn", "--seed", "-1")
    assert sql_rows(path, "select count(*) from dwml.predictions") == [(0,)]
    assert versions(demo) == [1]


@pytest.mark.parametrize("damage, named", [
    (lambda m: [m], "the top level is a list"),
    (lambda m: {**m, "nodes": {**m["nodes"], next(iter(m["nodes"])): None}}, "is null, not an object"),
    (lambda m: {**m, "nodes": {uid: ({**n, "columns": list(n["columns"])} if n.get("columns") else n)
                               for uid, n in m["nodes"].items()}}, ".columns is a list, not an object"),
])
def test_a_manifest_shaped_unlike_dbts_is_named(demo, damage, named):
    import json

    manifest = demo["DBT_TARGET_PATH"] / "manifest.json"
    manifest.write_text(json.dumps(damage(json.loads(manifest.read_text()))))
    for args in (["catalog", "search", "churn"], ["train", "churn", *FAST_XGBOOST], ["docs", "exposures"]):
        out = fails(*args)
        assert named in out and "is not a dbt manifest.json" in out and "unexpected" not in out, out
    assert versions(demo) == [1]


def test_a_duckdb_file_cut_short_is_named(demo):
    """Cut at any point, the file is refused with a clear error, whether opening it fails or a query
    reads a block that is gone ("unexpected IOException" before). A cut that leaves every block a
    command reads intact may go unnoticed by that command: DuckDB reads lazily."""
    path = demo["DWML_DUCKDB_PATH"]
    data = path.read_bytes()
    refusals = []
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        path.write_bytes(data[:int(len(data) * fraction)])
        for args in (["models", "list"], ["status"], ["predict", "churn"], ["runs", "list"]):
            result = invoke(*args)
            assert "Traceback" not in result.output and "unexpected" not in result.output, (fraction, result.output)
            if result.exit_code != 0:
                assert result.exit_code == 1 and "damaged or cut short" in result.output, (fraction, result.output)
                refusals.append((fraction, args[0]))
    assert len(refusals) >= 8, refusals  # most cuts are noticed, each in one clear line
