"""`dwml drift` on the demo: the shifted period is found (the shifted features flagged, the stable
ones not), the training period itself shows no dataset drift, and rows land in dwml.drift_metrics."""

import json
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo
from dwml_py.demo.generator import SHIFTED_FEATURES, STABLE_FEATURES, shift_start

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_drift_finds_the_shifted_period(project, duckdb_path):
    from dwml_py.drift import detect_drift
    from dwml_py.training_run import train

    config = DemoConfig(customers=3000, seed=11)
    generate_demo(project, config)
    assert run_dbt(project, ["build"]).success
    trained = train(project, "churn", params={"n_estimators": 40})
    split = trained["split"]
    start = shift_start(config)
    # the time split trains on the earlier period: the reference ends before the shift
    assert split["method"] == "time" and date.fromisoformat(str(split["cut"])[:10]) <= start, split

    shifted = detect_drift(project, "churn", version=1, where_after=start.isoformat())
    by_feature = {f["feature"]: f for f in shifted["features"]}
    flagged = [f for f in SHIFTED_FEATURES if f in by_feature]
    stable = [f for f in STABLE_FEATURES if f in by_feature]
    assert flagged and stable, sorted(by_feature)
    for feature in flagged:
        assert by_feature[feature]["drifted"], (feature, by_feature[feature])
    for feature in stable:
        assert not by_feature[feature]["drifted"], (feature, by_feature[feature])
    assert by_feature["country_code"]["kind"] == "categorical"
    assert shifted["version"] == 1 and shifted["window"]["after"] == start.isoformat()
    assert 0 < shifted["dataset"]["share"] <= 1
    assert any("score drift skipped" in n for n in shifted["notes"])  # no predictions yet

    # the training period itself: no dataset drift
    before = detect_drift(project, "churn", version=1, where_before=start.isoformat())
    assert before["dataset"]["is_drift"] is False and before["alert"] is False, before["dataset"]
    assert not any(by["drifted"] for by in before["features"] if by["feature"] in STABLE_FEATURES)
    late = detect_drift(project, "churn", version=1, where_after="2025-01-01", where_before=start.isoformat())
    assert late["dataset"]["is_drift"] is False, late["dataset"]  # a part of the training period: no drift

    con = duckdb.connect(str(duckdb_path))
    try:
        rows = con.sql("select drift_run_id, feature, statistic, value, is_drift, reference_window, current_window "
                       "from dwml.drift_metrics").fetchall()
    finally:
        con.close()
    runs = {r[0] for r in rows}
    assert runs == {shifted["drift_run_id"], before["drift_run_id"], late["drift_run_id"]}
    mine = [r for r in rows if r[0] == shifted["drift_run_id"]]
    assert ("__dataset__", "drift_share") in {(r[1], r[2]) for r in mine}
    assert all(r[5].startswith("training run ") for r in mine)
    assert {r[2] for r in mine if r[1] == "monthly_price"} == {"psi", "ks", "wasserstein_norm", "missing_rate_change"}

    # the CLI (after predictions exist, the score is compared too); exit 2 on an alert
    assert CliRunner().invoke(app, ["deploy", "churn", "--version", "1", "--json"]).exit_code == 0
    assert CliRunner().invoke(app, ["predict", "churn", "--json"]).exit_code == 0
    result = CliRunner().invoke(app, ["drift", "churn", "--after", start.isoformat(), "--json"])
    out = json.loads(result.stdout)
    assert result.exit_code == (2 if out["alert"] else 0), result.output
    assert out["score"] is not None and set(out["score"]["statistics"]) == {"psi", "ks"}
    assert out["dataset"]["is_drift"] == shifted["dataset"]["is_drift"]
