"""The audit log: append-only events with actor, UTC time, decision, reasons; secrets masked."""

from __future__ import annotations

import datetime as dt
import doctest

import pytest

from dwml_py import audit
from dwml_py.audit import current_actor, read_events, record_event, redact
from dwml_py.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def wh():
    warehouse = DuckDBWarehouse(":memory:")
    yield warehouse
    warehouse.close()


def test_doctests():
    assert doctest.testmod(audit).failed == 0


def test_record_event_creates_the_table_and_appends(wh, monkeypatch):
    monkeypatch.setenv("DWML_ACTOR", "agent:claude")
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    first = record_event(wh, "gate.quality", "fail", object_type="model", object_name="orders",
                         reasons=[{"check": "min_rows", "detail": "0 rows"}], details={"rows": 0})
    second = record_event(wh, "gate.quality", "overridden", object_type="model", object_name="orders",
                          reasons=[{"override_reason": "backfill in progress"}])
    after = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert first != second
    rows = read_events(wh, action="gate.quality")
    assert [r["event_id"] for r in rows] == [second, first]  # newest first
    assert {r["actor"] for r in rows} == {"agent:claude"}
    assert rows[1]["reasons"] == [{"check": "min_rows", "detail": "0 rows"}]
    assert rows[1]["details"] == {"rows": 0} and rows[0]["details"] is None
    for row in rows:  # naive UTC, like every dwml timestamp
        assert row["occurred_at"].tzinfo is None
        assert before - dt.timedelta(seconds=1) <= row["occurred_at"] <= after + dt.timedelta(seconds=1)
    assert wh.columns("dwml", "audit_log")[0] == ("event_id", "VARCHAR")


def test_actor_from_env_else_os_user(monkeypatch):
    monkeypatch.setenv("DWML_ACTOR", "  mcp:alice  ")
    assert current_actor() == "mcp:alice"
    monkeypatch.delenv("DWML_ACTOR")
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "bob")
    assert current_actor() == "bob"

    def no_user():
        raise OSError("no passwd entry")

    monkeypatch.setattr(audit.getpass, "getuser", no_user)
    assert current_actor() == "unknown"


def test_secrets_never_reach_the_log(wh):
    details = {"profile": {"type": "postgres", "password": "hunter2", "api_token": "t0k",
                           "nested": [{"client_secret": "s"}]}, "rows": 3}
    assert redact(details) == {"profile": {"type": "postgres", "password": "****", "api_token": "****",
                                           "nested": [{"client_secret": "****"}]}, "rows": 3}
    record_event(wh, "deploy", "done", details=details, reasons=[{"token": "abc"}], actor="ci")
    raw = wh.fetch_rows("select reasons, details from dwml.audit_log")[0]
    assert "hunter2" not in raw["details"] and "t0k" not in raw["details"] and "abc" not in raw["reasons"]
    assert details["profile"]["password"] == "hunter2"  # the caller's dict is untouched


def test_bad_arguments_are_refused(wh):
    with pytest.raises(ValueError, match="decision"):
        record_event(wh, "gate.quality", "maybe")
    with pytest.raises(ValueError, match="action"):
        record_event(wh, "", "pass")


def test_append_only_there_is_no_update_or_delete():
    names = [n for n in dir(audit) if callable(getattr(audit, n))]
    assert not [n for n in names if n.lower().startswith(("update", "delete", "remove", "purge", "truncate"))]


def test_existing_table_missing_a_column_is_migrated(wh):
    wh.create_schema("dwml")
    wh.execute('create table dwml.audit_log (event_id varchar, occurred_at timestamp, actor varchar, '
               'action varchar, decision varchar)')
    record_event(wh, "gate.governance", "pass", object_name="m", actor="x", reasons=[])
    assert "details" in {c for c, _ in wh.columns("dwml", "audit_log")}
    assert read_events(wh, object_name="m")[0]["decision"] == "pass"
