"""`dwml report`: the model card of a version, built on a small real warehouse (DuckDB) with a real
trained model, run, registry rows, reference profile, drift and performance rows.

Checked: every section and plot is there; the holdout rebuilt from the warehouse reproduces the
registered metrics (and sklearn's ROC AUC on the same rows); hostile names and free text are
escaped everywhere; empty states are shown when there is nothing to plot.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from typer.testing import CliRunner

from dwml_py import model_registry as registry
from dwml_py import report
from dwml_py.artifacts import ArtifactStore
from dwml_py.errors import NotFoundError
from dwml_py.tables import DWML_SCHEMA
from dwml_py.tracking import start_run, table_rows
from dwml_py.warehouse.duckdb import DuckDBWarehouse

HOSTILE_FEATURE = '<img src=x onerror="alert(1)">&f'
HOSTILE_CATEGORY = '</td><script>alert("cat")</script>'
HOSTILE_TEXT = "<script>window.pwned = 1</script> & 'quotes' \"too\""
MODEL, REGRESSION, BARE = "churn_card", "revenue_card", "bare_card"
SNAPSHOTS = [date(2025, 1, 1) + timedelta(days=31 * i) for i in range(5)]


def _feature_table(rows_per_snapshot: int = 160, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = rows_per_snapshot * len(SNAPSHOTS)
    x = rng.normal(size=n)
    hostile = rng.normal(size=n)
    cat = rng.choice(["a", "b", HOSTILE_CATEGORY], size=n)
    logit = 1.4 * x - 0.8 * hostile + np.where(cat == "a", 0.7, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pa.table({
        "id": np.arange(n, dtype=np.int64),
        "ts": pa.array([s for s in SNAPSHOTS for _ in range(rows_per_snapshot)], pa.date32()),
        "x_num": x, HOSTILE_FEATURE: hostile, "cat": cat.tolist(), "y": y,
        "amount": 50 + 20 * x + rng.normal(scale=5, size=n),
    })


def _spec(name: str, task: str, label: str):
    from dwml_py.training_set import TrainingSpec

    return TrainingSpec(name, task, "model.p.feats", "main", "feats", ["id"], "ts", "model.p.feats", "main", "feats",
                        label, None, ["x_num", HOSTILE_FEATURE, "cat"])


def _train_and_register(warehouse, store, name: str, task: str, label: str, gates: bool = True) -> dict:
    """What `dwml train` records, by the same functions, without dbt: run, metrics, artifact,
    version, reference profile."""
    from dwml_py.reference_profile import reference_profile
    from dwml_py.training import evaluate, fit
    from dwml_py.training_run import _reference_writer
    from dwml_py.training_set import build_training_query, fetch_training_table, fingerprint, split

    spec = _spec(name, task, label)
    query = build_training_query(spec, "duckdb")
    table = fetch_training_table(warehouse, query)
    fp = fingerprint(warehouse, query)
    train, holdout, info = split(table, spec, holdout_fraction=0.2)
    model = fit(train, spec, "xgboost", {"n_estimators": 15, "max_depth": 3})
    metrics = {k: v for k, v in evaluate(model, holdout)["metrics"].items() if isinstance(v, (int, float))}
    with start_run(experiment=HOSTILE_TEXT, model_name=name, warehouse=warehouse, store=store,
                   params={"algorithm": "xgboost", "seed": 0, "holdout_fraction": 0.2}) as run:
        run.set(feature_model="model.p.feats", label=f"feats.{label}", task=task, algorithm="xgboost", seed=0,
                data_fingerprint=fp["hash"], row_count=fp["row_count"], features=model.feature_schema())
        if gates:
            run.set(gates={"quality": {"passed": True, "decision": "pass", "audit_event_id": "q1"},
                           "governance": {"passed": True, "decision": "pass", "audit_event_id": "g1"},
                           "cost": {"passed": True, "decision": "pass", "audit_event_id": None,
                                    "estimate": {"predicted_seconds": 3.2, "predicted_peak_mb": 120.0}}})
        run.log_params({"split": {k: v for k, v in info.items() if k != "class_balance"}})
        run.log_metrics(metrics, split="holdout")
        run.log_artifact(model.to_bytes(), name="model.zip", artifact_format="dwml-model-zip")
        run.on_finish(_reference_writer(name, reference_profile(train, model, model.predict_score(train))))
        run.register(name, artifact="model.zip", description=HOSTILE_TEXT)
    return {"model": model, "holdout": holdout, "metrics": metrics, "version": run.version}


def _history_rows(name: str) -> tuple[pa.Table, pa.Table]:
    base = datetime(2025, 7, 1)
    drift, perf = [], []
    for k, psi_x in enumerate((0.01, 0.12, 0.6)):
        run_id = f"drift{k}"
        for feature, value, is_drift in (("x_num", psi_x, psi_x > 0.25), (HOSTILE_FEATURE, 0.02, False),
                                         ("__dataset__", 0.5 if psi_x > 0.25 else 0.0, psi_x > 0.25)):
            drift.append({"drift_run_id": run_id, "model_name": name, "version": 1, "feature": feature,
                          "statistic": "drift_share" if feature == "__dataset__" else "psi", "value": value,
                          "threshold": 0.25, "is_drift": is_drift, "severity": "major" if is_drift else "none",
                          "reference_window": "training run", "current_window": f"window {k} {HOSTILE_TEXT}",
                          "computed_at": base + timedelta(days=30 * k)})
        drift.append({**drift[-2], "statistic": "ks", "value": 0.9})  # another statistic: not in the heatmap
        start = base + timedelta(days=30 * k)
        for metric, value in (("roc_auc", 0.8 - 0.05 * k), (HOSTILE_TEXT, 0.3)):
            perf.append({"evaluation_id": f"eval{k}", "model_name": name, "version": 1,
                         "window_start": start, "window_end": start + timedelta(days=30),
                         "metric": metric, "value": value, "baseline": 0.8, "is_degraded": k == 2, "row_count": 100,
                         "computed_at": base + timedelta(days=30 * k + 31)})
    return table_rows("drift_metrics", drift), table_rows("performance_metrics", perf)


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    """One small warehouse for the module: a classifier with a production alias, drift and
    performance history; a regressor; a version without gates, history or aliases."""
    root = tmp_path_factory.mktemp("report")
    db, store = root / "card.duckdb", ArtifactStore(root / "artifacts")
    with DuckDBWarehouse(path=str(db)) as warehouse:
        warehouse.write_arrow(_feature_table(), "main", "feats")
        trained = _train_and_register(warehouse, store, MODEL, "classification", "y")
        regression = _train_and_register(warehouse, store, REGRESSION, "regression", "amount")
        _train_and_register(warehouse, store, BARE, "classification", "y", gates=False)
        registry.set_alias(warehouse, MODEL, "production", 1, reason=HOSTILE_TEXT, actor=HOSTILE_TEXT)
        drift, perf = _history_rows(MODEL)
        warehouse.write_arrow(drift, DWML_SCHEMA, "drift_metrics")
        warehouse.write_arrow(perf, DWML_SCHEMA, "performance_metrics")
    return {"db": db, "store": store, "root": root, "trained": trained, "regression": regression}


def _gather(card, name=MODEL, **kw) -> dict:
    with DuckDBWarehouse(path=str(card["db"])) as warehouse:
        return report.gather(warehouse, card["store"], name, **kw)


@pytest.fixture(scope="module")
def data(card) -> dict:
    return _gather(card)


@pytest.fixture(scope="module")
def page(card, data) -> tuple[dict, str]:
    result = report.write_report(data, card["root"] / "out" / "card.html")
    return result, (card["root"] / "out" / "card.html").read_text(encoding="utf-8")


class _Elements(HTMLParser):
    """Tags, ids and attribute values of a page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.images, self.urls, self.csp = [], set(), {}, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images[attrs.get("id")] = attrs
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy":
            self.csp = attrs.get("content")
        self.urls += [v for k, v in attrs.items() if k in ("src", "href") and v]


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


# -- the holdout, rebuilt ---------------------------------------------------------------------------

def test_rebuilt_holdout_reproduces_the_registered_metrics(card, data):
    holdout = data["holdout"]
    assert holdout["status"] == "rebuilt" and holdout["method"] == "time"
    assert holdout["same_data"] is True and holdout["fingerprint_now"] == holdout["fingerprint_then"]
    assert holdout["rows"] == card["trained"]["holdout"].num_rows
    assert holdout["check"]["match"] is True
    assert set(holdout["check"]["metrics"]) >= {"roc_auc", "pr_auc", "log_loss", "brier", "f1"}
    # the curves against sklearn on the holdout the training split produced
    trained = card["trained"]
    y = np.asarray(trained["holdout"].column("y").to_pylist())
    score = trained["model"].predict_score(trained["holdout"])
    curves = holdout["curves"]
    assert curves["roc"]["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert curves["roc"]["auc"] == pytest.approx(trained["metrics"]["roc_auc"], abs=1e-12)
    assert curves["pr"]["average_precision"] == pytest.approx(average_precision_score(y, score), abs=1e-12)
    assert curves["pr"]["base_rate"] == pytest.approx(y.mean())
    assert curves["roc"]["fpr"][0] == 0 and curves["roc"]["tpr"][-1] == 1
    assert sum(b["count"] for b in curves["calibration"]) == len(y)


def test_changed_data_is_reported_not_hidden(card):
    with DuckDBWarehouse(path=str(card["db"])) as warehouse:
        warehouse.execute("create table main.feats_backup as select * from main.feats")
        warehouse.execute("update main.feats set x_num = x_num + 1 where id % 7 = 0")
        try:
            changed = report.gather(warehouse, card["store"], MODEL)
        finally:
            warehouse.execute("create or replace table main.feats as select * from main.feats_backup")
            warehouse.execute("drop table main.feats_backup")
    assert changed["holdout"]["same_data"] is False
    assert changed["holdout"]["check"]["match"] is False
    html = report_html(changed)
    assert "the training data changed since training" in html
    assert "the recomputed metrics differ from the registered ones" in html


def report_html(data: dict) -> str:
    from dwml_py.report_html import render_html
    from dwml_py.report_plots import draw_plots

    return render_html(data, draw_plots(data))


def test_regression_gets_residual_plots(card):
    data = _gather(card, REGRESSION)
    curves = data["holdout"]["curves"]
    reg = card["regression"]
    assert data["holdout"]["check"]["match"] is True
    actual = np.asarray(reg["holdout"].column("amount").to_pylist())
    assert curves["actual"] == pytest.approx(actual.tolist())
    assert curves["predicted"] == pytest.approx(reg["model"].predict(reg["holdout"]).tolist())
    rmse = float(np.sqrt(np.mean((np.asarray(curves["actual"]) - np.asarray(curves["predicted"])) ** 2)))
    assert rmse == pytest.approx(reg["metrics"]["rmse"], rel=1e-9)
    elements = _parse(report_html(data))
    assert {"plot-residuals", "plot-predicted-actual"} <= set(elements.images)
    assert not {"plot-roc", "plot-pr", "plot-calibration"} & set(elements.images)


# -- the page ---------------------------------------------------------------------------------------

def test_every_section_and_plot_is_on_the_page(page):
    result, html = page
    elements = _parse(html)
    assert result["sections"] == list(report.SECTIONS)
    assert set(report.SECTIONS) <= elements.ids
    expected = {"plot-roc", "plot-pr", "plot-calibration", "plot-importance", "plot-drift", "plot-performance"}
    assert set(result["plots"]) == expected == set(elements.images)
    for plot_id, attrs in elements.images.items():
        assert attrs["src"].startswith("data:image/svg+xml;base64,"), plot_id
        svg = base64.b64decode(attrs["src"].split(",", 1)[1])
        root = ET.fromstring(svg)  # well-formed SVG, hostile labels included
        assert root.tag.endswith("svg") and int(attrs["width"]) > 100 and int(attrs["height"]) > 100
    assert result["bytes"] == len(html.encode("utf-8")) and result["empty_sections"] == []
    for table in ("metrics-table", "importance-table", "drift-table", "performance-table", "versions-table",
                  "alias-history-table", "gates-table", "profile-table", "features-table"):
        assert table in elements.ids, table


def test_the_page_is_self_contained(page):
    _, html = page
    elements = _parse(html)
    assert "script" not in elements.tags and "link" not in elements.tags and "iframe" not in elements.tags
    assert all(u.startswith(("data:", "#")) for u in elements.urls), elements.urls
    assert elements.csp.startswith("default-src 'none';")  # the CSP forbids scripts and every other URL


def test_values_are_escaped(page):
    _, html = page
    for raw in (HOSTILE_FEATURE, HOSTILE_CATEGORY, HOSTILE_TEXT):
        assert raw not in html
    import html as htmlmod

    assert htmlmod.escape(HOSTILE_FEATURE) in html  # in the features, profile and importance tables
    assert htmlmod.escape(HOSTILE_TEXT) in html  # description, alias reason and mover, drift window, metric name
    assert htmlmod.escape(HOSTILE_CATEGORY) in html  # top categories of the profile
    assert "pwned" not in "".join(_parse(html).tags)


def test_sections_hold_the_right_values(data, page):
    _, html = page
    assert data["version"] == 1 and data["version_row"]["aliases"] == ["production"]
    assert [g["gate"] for g in data["gates"]] == ["quality", "governance", "cost"]
    assert "Every gate passed." in html and "about 3 s, 120 MB" in html
    importance = data["importance"]["features"]
    assert {f["feature"] for f in importance} == {"x_num", HOSTILE_FEATURE, "cat"}
    assert sum(f["share"] for f in importance) == pytest.approx(1.0)
    assert importance[0]["share"] >= importance[-1]["share"]
    drift = data["drift"]
    assert [r["drift_run_id"] for r in drift["runs"]] == ["drift0", "drift1", "drift2"]
    assert drift["psi"]["x_num"] == {"drift0": 0.01, "drift1": 0.12, "drift2": 0.6}  # psi only, not ks
    assert drift["runs"][2]["is_drift"] is True and drift["runs"][2]["drifting"] == ["x_num"]
    assert [r["value"] for r in data["performance"] if r["metric"] == "roc_auc"] == pytest.approx([0.8, 0.75, 0.7])
    profile = {p["feature"]: p for p in data["profile"]}
    assert profile["cat"]["kind"] == "categorical" and profile["cat"]["categories"] == 3
    assert profile["__score__"]["kind"] == "score"
    assert [a["reason"] for a in data["alias_history"]] == [HOSTILE_TEXT]


def test_drift_history_keeps_the_latest_checks(card):
    with DuckDBWarehouse(path=str(card["db"])) as warehouse:
        latest = report.drift_history(warehouse, MODEL, limit=2)
    assert [r["drift_run_id"] for r in latest["runs"]] == ["drift1", "drift2"] and latest["total_runs"] == 3
    assert latest["psi"]["x_num"] == {"drift1": 0.12, "drift2": 0.6}


def test_empty_states(card):
    data = _gather(card, BARE, rebuild=False)
    result = report.write_report(data, card["root"] / "out")  # a folder: NAME-vN.html inside it
    assert result["path"].endswith(f"{BARE}-v1.html")
    html = (card["root"] / "out" / f"{BARE}-v1.html").read_text(encoding="utf-8")
    elements = _parse(html)
    assert {"gates-empty", "drift-empty", "performance-empty", "aliases-empty"} <= elements.ids
    assert set(result["empty_sections"]) == {"gates", "drift", "performance"}
    assert set(result["plots"]) == {"plot-importance"} == set(elements.images)
    assert data["holdout"]["status"] == "skipped" and "the holdout was not rebuilt" in html
    assert f"dwml drift {BARE}" in html and f"dwml evaluate {BARE}" in html


def test_version_choice_and_unknown_model(card):
    with DuckDBWarehouse(path=str(card["db"])) as warehouse:
        assert report.resolve_version(warehouse, MODEL)["aliases"] == ["production"]  # production first
        assert report.resolve_version(warehouse, BARE)["version"] == 1  # no alias: the latest
        with pytest.raises(NotFoundError, match="churn_crad"):
            report.resolve_version(warehouse, "churn_crad")


def test_cli_writes_the_card(card, monkeypatch, tmp_path):
    from dwml_py.cli import app

    monkeypatch.setenv("DWML_DUCKDB_PATH", str(card["db"]))
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(card["store"].root))
    out = tmp_path / "cli.html"
    # tmp_path lies outside the project: a person may write there, saying so
    result = CliRunner().invoke(app, ["report", MODEL, "--output", str(out), "--no-rebuild-holdout", "--json",
                                      "--allow-outside-project"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["path"] == str(out.resolve()) and out.stat().st_size == payload["bytes"]
    assert payload["holdout"]["status"] == "skipped" and "plot-roc" not in payload["plots"]
    shown = CliRunner().invoke(app, ["report", MODEL, "--output", str(out), "--no-rebuild-holdout",
                                     "--allow-outside-project"])
    assert shown.exit_code == 0 and "model card" in shown.stdout and "holdout not rebuilt" in shown.stdout
    missing = CliRunner().invoke(app, ["report", "no_such_model", "--output", str(out), "--allow-outside-project"])
    assert missing.exit_code == 1 and "No registered model named 'no_such_model'" in missing.output
    assert re.search(r"Traceback", missing.output) is None


def test_renderers_survive_partial_results(capsys):
    from dwml_py.cli_render import RENDERERS

    for tool, full in (("create_report", {"path": "/x/churn-v1.html", "bytes": 2048, "sections": ["summary", "drift"],
                                          "empty_sections": ["drift"], "plots": ["plot-roc"], "model_name": "churn",
                                          "version": 1, "holdout": {"status": "rebuilt", "rows": 10, "same_data": True},
                                          "metrics_match": True, "notes": ["[bold]n[/bold]"]}),
                       ("write_exposures", {"path": "/x/e.yml", "written": True, "exposures": ["ml_churn"],
                                            "depends_on": {"ml_churn": ["ref('f')"]}, "notes": [], "next": "dbt"})):
        RENDERERS[tool](full)
        RENDERERS[tool]({k: v for i, (k, v) in enumerate(full.items()) if i % 2})
        RENDERERS[tool]({})
    out = capsys.readouterr().out
    assert "drift (empty)" in out and "metrics reproduced" in out and "ml_churn <- ref('f')" in out
