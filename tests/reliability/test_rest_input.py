"""REST input the client got wrong is a 4xx naming row and field, never a 500 (issue 18, point 4).

A snapshot timestamp that leaves the years 1-9999 once moved to UTC and an entity key beyond 64
bits raised OverflowError (a 500); a number for the timestamp was read as epoch seconds although
the API promises no coercion. The OpenAPI document now lists every status the server answers, and
an internal error is logged once (the server logged each traceback twice).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.helpers import served

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pytest.importorskip("fastapi")


def _app_and_row(**settings):
    """The REST app serving the demo's churn model, and one valid request row as a client sends it."""
    from dwml_py import model_registry as registry
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.project import Project
    from dwml_py.serving import create_app
    from dwml_py.training import TrainedModel
    from dwml_py.warehouse import connect

    project = Project.locate()
    with connect(project) as warehouse:
        model = TrainedModel.from_bytes(registry.load_model_bytes(
            ArtifactStore.for_project(project), registry.get_version(warehouse, "churn", version=1)))
        spec = model.spec
        keep = [f["name"] for f in model.features] + [spec["entity"][0], spec["timestamp"]]
        row = warehouse.fetch_rows(f'select * from "{spec["feature_schema"]}"."{spec["feature_table"]}" limit 1')[0]
    row = {k: float(v) if isinstance(v, decimal.Decimal) else v.isoformat() if isinstance(v, (dt.date, dt.datetime))
           else v for k, v in row.items() if k in keep}
    return create_app(project, ["churn"], **settings), row, spec["entity"][0], spec["timestamp"]


def test_overflowing_and_coerced_values_are_422s_naming_row_and_field(demo, caplog):
    app, row, entity, timestamp = _app_and_row(log_predictions=True)
    cases = [(timestamp, "0001-01-01T00:00:00+05:00", "The timestamp is outside the years 1-9999 once converted to UTC"),
             (timestamp, "9999-12-31T23:59:59-05:00", "The timestamp is outside the years 1-9999 once converted to UTC"),
             (timestamp, 12345, "The timestamp should be an ISO 8601 date or datetime as text"),
             (entity, 10**30, "The entity key should be a 64-bit integer or a string")]
    with caplog.at_level(logging.INFO), served(app) as client:
        for field, value, message in cases:
            response = client.post("/models/churn/predict", json={"rows": [row, {**row, field: value}]})
            assert response.status_code == 422, (field, value, response.text)
            errors = response.json()["errors"]
            assert [(e["row"], e["field"]) for e in errors] == [(1, field)]
            assert errors[0]["message"].startswith(message), errors[0]
        assert client.post("/models/churn/predict", json={"rows": [row]}).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_openapi_lists_every_status_and_an_internal_error_is_logged_once(demo, caplog, monkeypatch):
    from dwml_py.serving import ModelStore

    app, row, _, _ = _app_and_row(log_predictions=False)

    def broken(self):
        raise RuntimeError("a fault inside the server")

    monkeypatch.setattr(ModelStore, "describe", broken)
    with caplog.at_level(logging.INFO), served(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert set(paths["/models/{name}/predict"]["post"]["responses"]) == {
            "200", "400", "401", "404", "413", "422", "500", "503"}
        assert {"401", "404", "500", "503"} <= set(paths["/models/{name}/versions"]["get"]["responses"])
        assert paths["/models/{name}/predict"]["post"]["responses"]["422"]["content"]["application/json"]
        response = client.get("/models")
    assert response.status_code == 500 and set(response.json()) == {"error", "message", "error_id"}
    tracebacks = [r for r in caplog.records if r.exc_info or r.exc_text]
    assert len(tracebacks) == 1 and response.json()["error_id"] in tracebacks[0].getMessage()


EDGES = [10**30, -(2**63) - 1, 2**63, 2**63 - 1, 1e308, -1e-308, 12345, "0001-01-01T00:00:00+05:00",
         "9999-12-31T23:59:59-05:00", "0001-01-01", "9999-12-31T23:59:59.999999", "2024-02-30", "2024-01-01T25:00:00",
         "", "NaN", "1e309", "\x00", "☃" * 50, [], {}, None, True]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EDGES) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5)


def test_any_json_value_in_any_field_is_answered_never_a_500(demo):
    """Each field of a row gets the edge values above and generated JSON (hypothesis): the answer is
    a 200, or a 422 naming that row and field."""
    from fastapi.testclient import TestClient

    app, row, _, _ = _app_and_row(log_predictions=True)
    with TestClient(app) as client:
        def answer(field, value):
            response = client.post("/models/churn/predict", json={"rows": [row, {**row, field: value}]})
            assert response.status_code in (200, 422), (field, value, response.text)
            if response.status_code == 422:
                assert {(e["row"], e["field"]) for e in response.json()["errors"]} == {(1, field)}, response.text

        for field in sorted(row):
            for value in EDGES:
                answer(field, value)

            @settings(max_examples=20, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(value=JSON)
            def generated(value):
                answer(field, value)

            generated()
