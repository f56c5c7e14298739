"""`dwml report` and `dwml docs exposures` on the demo: train, deploy, score and check drift, then

- the model card has every section and plot, and reproduces the registered holdout metrics;
- the deployed model is a dbt exposure that `dbt docs generate` puts in the lineage, with every
  model, source and column of the project documented;
- the card opens in a real headless Chromium without console errors, its plots drawn.

The demo project is copied to a temporary folder: the exposures file is written into its models/,
never into the checkout (which other tests parse at the same time).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.project import copy_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = Path(__file__).resolve().parents[2] / "demo"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1600")


def _copy_project(target: Path) -> Path:
    copy_project(DEMO, target)
    # No training budget in the copy: the cost gate then skips its calibration fits (tested elsewhere).
    config = yaml.safe_load((target / "dbt_project.yml").read_text())
    config.get("vars", {}).get("dwml", {}).pop("cost", None)
    (target / "dbt_project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return target


@contextlib.contextmanager
def _in_demo_env(demo):
    """The demo's environment for module-scoped fixtures (conftest's isolation is per test)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in demo["env"].items():
            mp.setenv(key, value)
        mp.chdir(demo["project_dir"])
        yield


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, built once: trained, deployed as production, scored, drift checked twice."""
    from dwml_py.batch_scoring import predict
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.demo.generator import shift_start
    from dwml_py.deployment import deploy
    from dwml_py.drift import detect_drift
    from dwml_py.project import Project
    from dwml_py.training_run import train

    root = tmp_path_factory.mktemp("report_demo")
    project_dir = _copy_project(root / "project")
    env = {"DWML_DUCKDB_PATH": str(root / "demo.duckdb"), "DBT_TARGET_PATH": str(root / "target"),
           "DBT_LOG_PATH": str(root / "logs"), "DWML_ARTIFACT_DIR": str(root / "artifacts"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    demo = {"project_dir": project_dir, "env": env, "root": root}
    with _in_demo_env(demo):
        project = Project.locate(project_dir)
        config = DemoConfig(customers=1500, seed=5)
        generate_demo(project, config)
        assert run_dbt(project, ["build"]).success
        trained = train(project, "churn", params={"n_estimators": 30})
        assert deploy(project, "churn", 1)["changed"]
        predict(project, "churn")
        start = shift_start(config).isoformat()
        detect_drift(project, "churn", version=1, where_before=start)
        detect_drift(project, "churn", version=1, where_after=start)
    return {**demo, "trained": trained}


@pytest.fixture
def in_demo(demo, monkeypatch):
    for key, value in demo["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(demo["project_dir"])
    return demo


@pytest.fixture(scope="module")
def card(demo) -> dict:
    """`dwml report churn` on the demo (production's version), once."""
    with _in_demo_env(demo):
        result = CliRunner().invoke(app, ["report", "churn", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_of_the_deployed_model(card, in_demo):
    path = Path(card["path"])
    assert path.is_file() and path.parent.name == "dwml_reports" and path.name == "churn-v1.html"
    assert path.stat().st_size == card["bytes"]
    assert card["version"] == 1 and card["sections"][0] == "summary" and "drift" in card["sections"]
    assert {"plot-roc", "plot-pr", "plot-calibration", "plot-importance", "plot-drift"} <= set(card["plots"])
    assert card["holdout"]["status"] == "rebuilt" and card["holdout"]["same_data"] is True
    assert card["metrics_match"] is True  # the rebuilt holdout gives the registered metrics again
    html = path.read_text(encoding="utf-8")
    assert "customer_features" in html and "Every gate passed." in html
    assert f"{in_demo['trained']['metrics']['roc_auc']:.4f}" in html


@pytest.fixture(scope="module")
def docs(demo) -> dict:
    """`dwml docs exposures` (twice), then `dbt docs generate` on the demo: the files dbt docs serves."""
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.project import Project

    with _in_demo_env(demo):
        first = CliRunner().invoke(app, ["docs", "exposures", "--json"])
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(app, ["docs", "exposures", "--json"])
        assert run_dbt(Project.locate(demo["project_dir"]), ["docs", "generate"]).success
    target = Path(demo["env"]["DBT_TARGET_PATH"])
    return {"written": json.loads(first.stdout), "again": json.loads(again.stdout), "target": target,
            "manifest": json.loads((target / "manifest.json").read_text()),
            "catalog": json.loads((target / "catalog.json").read_text())}


def test_deployed_model_is_an_exposure_in_dbt_docs(docs, demo):
    written = docs["written"]
    assert Path(written["path"]) == (demo["project_dir"] / "models" / "exposures" / "dwml_exposures.yml").resolve()
    assert written["exposures"] == ["ml_churn"] and written["written"] and written["notes"] == []
    assert docs["again"]["written"] is False  # same content: the file (and dbt's manifest) is left alone
    manifest = docs["manifest"]
    exposure = manifest["exposures"]["exposure.dwml_demo.ml_churn"]
    assert exposure["type"] == "ml" and exposure["maturity"] == "high" and exposure["owner"]["name"] == "dwml-demo"
    assert exposure["meta"]["dwml"]["aliases"] == {"production": 1}
    # the SQL scoring model, where the demo has one, sits between the features and the exposure
    scoring = {"model.dwml_demo.churn_scores"} & set(manifest["nodes"])
    assert set(exposure["depends_on"]["nodes"]) == {
        "model.dwml_demo.customer_features", "model.dwml_demo.customer_labels", "model.dwml.dwml_model_versions",
        "model.dwml.dwml_predictions", "model.dwml.dwml_drift_metrics", "model.dwml.dwml_performance_metrics"} | scoring
    # the lineage dbt docs draws: raw source -> staging -> features -> the ML model
    assert "exposure.dwml_demo.ml_churn" in manifest["child_map"]["model.dwml_demo.customer_features"]
    upstream, frontier = set(), ["exposure.dwml_demo.ml_churn"]
    while frontier:
        for parent in manifest["parent_map"].get(frontier.pop(), []):
            if parent not in upstream:
                upstream.add(parent)
                frontier.append(parent)
    assert {"source.dwml_demo.raw.daily_usage", "model.dwml_demo.stg_daily_usage", "source.dwml.dwml.predictions"} <= upstream
    assert (docs["target"] / "index.html").is_file()


def test_every_model_source_and_column_is_documented(docs):
    manifest, undocumented = docs["manifest"], []
    for kind in ("nodes", "sources"):
        for uid, entry in docs["catalog"][kind].items():
            node = manifest[kind].get(uid)
            if node is None or node["resource_type"] not in ("model", "source"):
                continue
            if not node.get("description"):
                undocumented.append(uid)
            undocumented += [f"{uid}.{c}" for c in entry["columns"]
                             if not (node["columns"].get(c) or {}).get("description")]
    assert undocumented == []


def test_a_hand_edited_exposures_file_is_kept(docs, in_demo):
    path = Path(docs["written"]["path"])
    original = path.read_text()
    path.write_text(original + "# my note\n")
    refused = CliRunner().invoke(app, ["docs", "exposures"])
    assert refused.exit_code == 1 and "edited after dwml generated it" in refused.output
    assert path.read_text().endswith("# my note\n")
    forced = CliRunner().invoke(app, ["docs", "exposures", "--force"])
    assert forced.exit_code == 0, forced.output
    assert path.read_text() == original


# -- as a person would see it ------------------------------------------------------------------------

def _browser(user_data_dir: Path):
    """A headless Chromium driven through ChromeDriver, or pytest.skip saying why there is none."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"no {' and '.join(missing)}: install Debian's chromium and chromium-driver (.ci/run does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it is in the dev extra)")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={user_data_dir}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - any failure to start means there is no browser to test with
        pytest.skip(f"Chromium did not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")


_PLOTS_JS = """
return Array.from(document.querySelectorAll('img')).map(function (img) {
  var box = img.getBoundingClientRect();
  return {id: img.id, complete: img.complete, natural: [img.naturalWidth, img.naturalHeight],
          shown: [box.width, box.height]};
});
"""


def test_report_renders_in_headless_chromium(card, tmp_path):
    driver = _browser(tmp_path / "chromium-profile")
    try:
        # the check itself: a page with a script error must show up as a console error
        driver.get("data:text/html,<script>undefinedFunction()</script>")
        assert any(e["level"] == "SEVERE" for e in driver.get_log("browser"))

        driver.get(Path(card["path"]).as_uri())
        assert driver.title == "Model card: churn version 1"
        images = {i["id"]: i for i in driver.execute_script(_PLOTS_JS)}
        headings = [h.text for h in driver.find_elements("css selector", "section h2")]
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        screenshot = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    assert errors == []
    assert set(card["plots"]) == set(images)
    for plot_id, image in images.items():
        assert image["complete"] and min(image["natural"]) > 0, image  # the SVG decoded and drew
        assert min(image["shown"]) > 50, image  # and it takes room on the page
    assert headings == ["Summary", "Data", "Gates", "Metrics", "Feature importance", "Drift over time",
                        "Performance over time", "Versions and aliases"]
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n"
