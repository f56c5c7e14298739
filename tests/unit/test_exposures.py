"""dwml.exposures: deployed models as dbt exposures, every reference checked against the manifest,
a generated file with a checksum that a hand edit protects. (`dbt docs generate` on the demo with
the real file: tests/integration/test_report_demo.py.)"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml

import dwml_py
from dwml_py import exposures
from dwml_py import model_registry as registry
from dwml_py.artifacts import ArtifactStore
from dwml_py.errors import InputError
from dwml_py.tracking import ensure_once
from dwml_py.warehouse import connect

MANIFEST = {
    "metadata": {"project_name": "shop"},
    "nodes": {
        "model.shop.feats": {"resource_type": "model", "name": "feats", "package_name": "shop",
                             "config": {"meta": {"owner": "growth-team"}}},
        "model.shop.labels": {"resource_type": "model", "name": "labels", "package_name": "shop"},
        "model.shop.churn_scores": {"resource_type": "model", "name": "churn_scores", "package_name": "shop",
                                    "config": {"tags": ["dwml_scoring"]}},
        "model.dwml.dwml_predictions": {"resource_type": "model", "name": "dwml_predictions", "package_name": "dwml"},
        "test.shop.not_null_feats_id": {"resource_type": "test", "name": "dwml_model_versions", "package_name": "shop"},
    },
    "sources": {"source.dwml.dwml.drift_metrics": {"source_name": "dwml", "name": "drift_metrics"}},
}


def _model_zip(label_model: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meta.json", json.dumps({"spec": {"label_model": label_model}}))
    return buffer.getvalue()


def _version(warehouse, store, name: str, feature_model: str, artifact: bytes) -> int:
    with dwml_py.start_run(experiment=name, model_name=name, warehouse=warehouse, store=store) as run:
        run.set(task="classification", algorithm="xgboost", feature_model=feature_model)
        run.log_metrics({"roc_auc": 0.8125}, split="holdout")
        run.log_artifact(artifact, name="model.zip")
        run.register(name)
    return run.version["version"]


@pytest.fixture
def warehouse(project):
    store = ArtifactStore.for_project(project)
    w = connect(project)
    ensure_once(w)
    churn = _version(w, store, "churn", "model.shop.feats", _model_zip("model.shop.labels"))
    registry.set_alias(w, "churn", "production", churn, actor="ana")
    staging = _version(w, store, "churn", "model.shop.feats", b"not a zip")
    registry.set_alias(w, "churn", "staging", staging, actor="ana")
    registry.set_alias(w, "a.b-c", "staging", _version(w, store, "a.b-c", "model.shop.gone", b"x"), actor="bo")
    registry.set_alias(w, "a_b_c", "production", _version(w, store, "a_b_c", "feats", b"y"), actor="cy")
    _version(w, store, "undeployed", "model.shop.feats", b"z")
    yield w
    w.close()


def test_one_exposure_per_deployed_model_with_checked_refs(warehouse, project):
    built, notes = exposures.build_exposures(warehouse, ArtifactStore.for_project(project), MANIFEST)
    by_model = {e["config"]["meta"]["dwml"]["model_name"]: e for e in built}
    assert set(by_model) == {"churn", "a.b-c", "a_b_c"}  # no alias, no exposure
    churn = by_model["churn"]
    assert churn["name"] == "ml_churn" and churn["type"] == "ml" and churn["maturity"] == "high"
    assert churn["owner"] == {"name": "growth-team"}  # the feature model's owner
    # label from the artifact's spec; a scoring model by its tag; dwml tables as views, else sources, else left out
    assert churn["depends_on"] == ["ref('feats')", "ref('labels')", "ref('churn_scores')",
                                   "ref('dwml', 'dwml_predictions')", "source('dwml', 'drift_metrics')"]
    assert churn["config"]["meta"]["dwml"]["aliases"] == {"production": 1, "staging": 2}
    assert "`production`: version 1" in churn["description"] and "roc_auc 0.8125" in churn["description"]
    odd = by_model["a.b-c"]
    assert odd["maturity"] == "medium" and odd["owner"] == {"name": "bo"}  # staging only; who moved the alias
    assert odd["depends_on"] == ["ref('dwml', 'dwml_predictions')", "source('dwml', 'drift_metrics')"]
    assert notes == ["a.b-c: 'model.shop.gone' is not a model in the manifest; left out of its exposure's depends_on."]
    assert {odd["name"], by_model["a_b_c"]["name"]} == {"ml_a_b_c", "ml_a_b_c_2"}  # dbt-safe and unique
    assert by_model["a_b_c"]["depends_on"][0] == "ref('feats')"  # a plain model name resolves too


def test_written_once_kept_when_edited(warehouse, project, tmp_path):
    path = tmp_path / "models" / "exposures" / "ml.yml"
    # tmp_path is outside the project: allowed on purpose, as the CLI's --allow-outside-project does
    mine = {"warehouse": warehouse, "manifest": MANIFEST, "allow_outside": True}
    first = exposures.write_exposures(project, output=path, **mine)
    assert first["written"] and first["exposures"] == ["ml_a_b_c", "ml_a_b_c_2", "ml_churn"]
    text = path.read_text()
    assert text.startswith("# Generated by dwml") and "dwml-checksum: sha256:" in text
    body = yaml.safe_load(text)
    assert body["version"] == 2 and {e["name"] for e in body["exposures"]} == set(first["exposures"])
    assert any("outside the project's model paths" in n for n in first["notes"])
    again = exposures.write_exposures(project, output=path, **mine)
    assert again["written"] is False and path.read_text() == text

    path.write_text(text.replace("type: ml", "type: ml  # ours", 1))
    with pytest.raises(InputError, match="edited after dwml generated it"):
        exposures.write_exposures(project, output=path, **mine)
    forced = exposures.write_exposures(project, output=path, force=True, **mine)
    assert forced["written"] and path.read_text() == text
    with pytest.raises(InputError, match="must be a .yml file"):
        exposures.write_exposures(project, output=tmp_path / "x.txt", **mine)
    with pytest.raises(InputError, match="outside the dbt project"):
        exposures.write_exposures(project, output=path, warehouse=warehouse, manifest=MANIFEST)


def test_default_path_is_in_the_first_model_path(project):
    assert exposures.default_path(project) == project.project_dir / "models" / "exposures" / "dwml_exposures.yml"
