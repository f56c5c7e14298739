"""Secrets from profiles are masked by value wherever text leaves dwml: errors, SQL literals (and so
tables), the audit log, the CLI's output streams, the settings view."""

import doctest
import io
import sys

import pytest

from dwml_py import redaction
from dwml_py.errors import WarehouseError
from dwml_py.project import Project
from tests.conftest import DEMO_DIR

NESTED = {
    "settings": {"s3_secret_access_key": "s3-secret-0001", "s3_region": "eu-west-1"},
    "extensions": ["httpfs", {"name": "aws", "repo": "https://x:tok-0002@repo.example"}],
    "attach": [{"path": "md:db?motherduck_token=att-0003", "alias": "md"}],
    "plugins": [{"module": "gsheet", "config": {"method": "oauth", "credential": "plug-0004"}}],
    "secrets": [{"type": "s3", "key_id": "kid-0005", "secret": "sec-0006"}],
    "options": "-c statement_timeout=5000 password=opt-0007",
    "server_side_parameters": {"spark.hadoop.fs.s3a.secret.key": "ssp-0008", "spark.sql.shuffle.partitions": "4"},
    "password": "pw-0009",
    "type": "duckdb", "path": "warehouse.duckdb", "host": "db.example.com", "threads": 4, "user": "ana",
}


def test_doctests():
    assert doctest.testmod(redaction).failed == 0


def test_every_nested_value_is_a_secret_but_plain_top_level_settings_are_not():
    found = redaction.secret_values(NESTED)
    for value in ("s3-secret-0001", "eu-west-1", "httpfs", "https://x:tok-0002@repo.example",
                  "md:db?motherduck_token=att-0003", "plug-0004", "oauth", "kid-0005", "sec-0006",
                  "-c statement_timeout=5000 password=opt-0007", "ssp-0008", "pw-0009"):
        assert value in found, value
    # too short or too common to mask in free text ("4"), and top-level settings meant to be shown
    assert not found & {"4", "duckdb", "warehouse.duckdb", "db.example.com", "ana", "md", "s3"}


def test_profile_resolution_registers_nested_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("NESTED_SECRET", "from-env-0010")
    monkeypatch.setenv("DBT_ENV_SECRET_TOKEN", "dbt-secret-0011")
    (tmp_path / "profiles.yml").write_text(
        "dwml_demo:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: x.duckdb\n"
        "      schema: \"{{ env_var('DBT_ENV_SECRET_TOKEN') }}\"\n"
        "      settings:\n        s3_secret_access_key: \"{{ env_var('NESTED_SECRET') }}\"\n")
    profile = Project.locate(DEMO_DIR, tmp_path).profile
    assert profile.redacted()["settings"]["s3_secret_access_key"] == "****"
    assert {"from-env-0010", "dbt-secret-0011"} <= set(redaction.registered())
    error = WarehouseError("SET \"s3_secret_access_key\" = 'from-env-0010' in dbt-secret-0011",
                           hint="value from-env-0010")
    assert "from-env-0010" not in str(error) and "dbt-secret-0011" not in str(error)
    assert error.message == "SET \"s3_secret_access_key\" = '****' in ****"


def test_sql_literals_cannot_carry_a_secret_into_a_table():
    from dwml_py import sql as sqlmod

    redaction.register(["it's-secret-0012"])
    assert sqlmod.render(sqlmod.literal("error: it's-secret-0012"), "duckdb") == "'error: ****'"
    # the warehouse layer's own settings statement still gets the value
    assert sqlmod.render(sqlmod.setting_literal("it's-secret-0012"), "duckdb") == "'it''s-secret-0012'"


def test_masked_settings_and_json_data_keep_their_shape():
    redaction.register(redaction.secret_values(NESTED))
    shown = redaction.masked(NESTED)
    assert shown["password"] == "****" and shown["secrets"] == "****"  # a credential key hides its whole value
    assert shown["settings"]["s3_secret_access_key"] == "****" and shown["type"] == "duckdb"
    data = redaction.scrub_data({"detail": "refused eu-west-1", "n": [1, True, None, "kid-0005"]})
    assert data == {"detail": "refused ****", "n": [1, True, None, "****"]}


def test_cli_streams_scrub_what_they_write(monkeypatch):
    from dwml_py.console import print_json, stdout

    redaction.register(["stream-secret-0013"])
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    stdout.print("value: stream-secret-0013")
    print_json({"detail": "SET x = 'stream-secret-0013'", "ok": False})
    assert "stream-secret-0013" not in out.getvalue()
    assert "value: ****" in out.getvalue() and '"ok": false' in out.getvalue()


def test_audit_details_are_scrubbed_by_value():
    from dwml_py.audit import read_events, record_event
    from dwml_py.warehouse.duckdb import DuckDBWarehouse

    redaction.register(["audit-secret-0014"])
    with DuckDBWarehouse(":memory:") as wh:
        record_event(wh, "tool.test", "done", details={"error": "refused SET x = 'audit-secret-0014'"},
                     reasons=["audit-secret-0014"])
        event = read_events(wh, action="tool.test")[0]
    assert event["details"] == {"error": "refused SET x = '****'"} and event["reasons"] == ["****"]


@pytest.mark.parametrize("value", ["", "1", "4GB", "true", "False", "3.5", "-12", "off"])
def test_short_and_common_values_are_not_scrubbed_from_text(value):
    redaction.register([value])
    assert redaction.scrub(f"x {value} y") == f"x {value} y"
