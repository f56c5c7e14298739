"""The audit log: every gate decision, override and change dwml makes, appended to dwml.audit_log.

The log is append-only by construction: this module can insert an event and read events back,
and there is no function that updates or deletes one. Who did it is `current_actor()`: the
DWML_ACTOR environment variable (set by the agent server to the calling agent or user), else the
operating-system user. Timestamps are UTC without a time zone, like every dwml table.

Nothing secret goes in: keys that name a secret (password, token, ...) are masked wherever they
occur in `details` or `reasons`, and secret values from profiles.yml are scrubbed from every
string (dwml_py.redaction).

>>> from dwml_py.warehouse.duckdb import DuckDBWarehouse
>>> wh = DuckDBWarehouse(":memory:")
>>> event = record_event(wh, "gate.quality", "pass", object_type="model", object_name="orders",
...                      reasons=[], details={"password": "hunter2"}, actor="ana")
>>> row = read_events(wh, action="gate.quality")[0]
>>> row["actor"], row["decision"], row["details"]
('ana', 'pass', {'password': '****'})
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import uuid
from typing import Any

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.redaction import scrub
from dwml_py.tables import DWML_SCHEMA, TABLES, add_column_statement, create_table_statement

AUDIT_TABLE = "audit_log"
ACTOR_ENV = "DWML_ACTOR"
REDACTED = "****"
# Keys whose values are masked in details and reasons (a narrower list than a profile's credential
# words: details hold keys like `passed` and `entity_key`, which are no secrets).
SECRET_KEYS = {"password", "pass", "token", "private_key", "private_key_passphrase", "secret",
               "client_secret", "keyfile_json", "refresh_token", "api_key"}
# Decisions the log uses; anything else is refused so that queries over the log stay simple.
DECISIONS = ("pass", "fail", "refused", "overridden", "done")


def current_actor() -> str:
    """Who is acting: $DWML_ACTOR (the agent server sets it), else the OS user name."""
    actor = os.environ.get(ACTOR_ENV, "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers (no passwd entry, no LOGNAME)
        return "unknown"


def redact(value: Any) -> Any:
    """A copy of `value` with the values of secret-looking keys masked, at any depth, and secrets
    from profiles scrubbed from every string."""
    if isinstance(value, dict):
        return {scrub(k): (REDACTED if _is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return scrub(value)


def _is_secret_key(key) -> bool:
    lowered = str(key).lower()
    return lowered in SECRET_KEYS or any(word in lowered for word in ("secret", "password", "token"))


def ensure_audit_table(warehouse, schema: str = DWML_SCHEMA) -> None:
    """Create dwml.audit_log when missing and add columns the definition gained since.

    Only this one table: recording an event should not create or migrate all of dwml's tables.
    """
    spec = TABLES[AUDIT_TABLE]
    warehouse.create_schema(schema)
    existing = {name.lower() for name, _ in warehouse.columns(schema, AUDIT_TABLE)}
    if not existing:
        warehouse.execute(create_table_statement(spec, schema))
        return
    for col in spec.columns:
        if col.name.lower() not in existing:
            warehouse.execute(add_column_statement(spec, col, schema))


def record_event(warehouse, action: str, decision: str, *, object_type: str | None = None,
                 object_name: str | None = None, reasons: Any = None, details: Any = None,
                 actor: str | None = None, schema: str = DWML_SCHEMA) -> str:
    """Append one event to dwml.audit_log (creating the table when missing); returns its event_id.

    `reasons` (why: failing checks, an override's reason) and `details` (anything else) are
    stored as JSON text after secrets are masked.
    """
    if not action or not isinstance(action, str):
        raise ValueError(f"action must be a non-empty string such as 'gate.quality', got {action!r}")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    from dwml_py.call_context import refuse_write

    refuse_write(f"recording {action!r} in {schema}.{AUDIT_TABLE}")
    ensure_audit_table(warehouse, schema)
    event_id = uuid.uuid4().hex
    occurred_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    values = {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "actor": actor or current_actor(),
        "action": action,
        "object_type": object_type,
        "object_name": object_name,
        "decision": decision,
        "reasons": _json_text(reasons),
        "details": _json_text(details),
    }
    warehouse.execute(_insert_statement(values, schema))
    return event_id


def read_events(warehouse, *, action: str | None = None, object_name: str | None = None,
                limit: int | None = None, schema: str = DWML_SCHEMA) -> list[dict]:
    """Events, newest first, with `reasons` and `details` parsed back from JSON."""
    if not warehouse.table_exists(schema, AUDIT_TABLE):
        return []
    query = exp.select("*").from_(sqlmod.table(schema, AUDIT_TABLE))
    if action is not None:
        query = query.where(sqlmod.column("action").eq(sqlmod.literal(action)))
    if object_name is not None:
        query = query.where(sqlmod.column("object_name").eq(sqlmod.literal(object_name)))
    query = query.order_by(exp.Ordered(this=sqlmod.column("occurred_at"), desc=True))
    if limit is not None:
        query = query.limit(int(limit))
    rows = warehouse.fetch_rows(query)
    for row in rows:
        for key in ("reasons", "details"):
            if row.get(key) is not None:
                row[key] = json.loads(row[key])
    return rows


def _insert_statement(values: dict, schema: str) -> exp.Insert:
    row = []
    for name, value in values.items():
        if name == "occurred_at":
            row.append(exp.cast(sqlmod.literal(value.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP")))
        else:
            row.append(sqlmod.literal(value))
    columns = exp.Schema(this=sqlmod.table(schema, AUDIT_TABLE), expressions=[sqlmod.ident(n) for n in values])
    return exp.Insert(this=columns, expression=exp.Values(expressions=[exp.Tuple(expressions=row)]))


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    # default=str: dates and other plain objects in details must not make the gate crash
    return json.dumps(redact(value), default=str, sort_keys=True)
