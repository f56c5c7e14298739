"""Security properties (issue 12, point 3): artifacts verified before load and untrusted types
refused even when the checksum matches; secrets from profiles never printed, logged, stored in a
table or an artifact; the audit log only ever grows. (The REST server's API key, error bodies
and size limit are tested over HTTP in tests/integration/test_serve.py.)

Issue 18 added: secrets at any depth of the profile (by value), writes confined to the project
and never over a file dwml did not write, and prediction batches that belong to their source.
Read-only sessions are in test_read_only.py, REST input in test_rest_input.py."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pytest

from tests.conftest import DEMO_DIR
from tests.reliability.helpers import FAST_XGBOOST, invoke, ok, sql_exec, sql_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-sEcReT-5f1c"


def artifact_path(path) -> Path:
    uri = sql_rows(path, "select artifact_uri from dwml.model_versions where version = 1")[0][0]
    return Path(urlparse(uri).path)


def test_tampered_artifact_is_refused(demo):
    path = demo["DWML_DUCKDB_PATH"]
    artifact = artifact_path(path)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = invoke("predict", "churn")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "sha256" in result.output
    assert sql_rows(path, "select count(*) from dwml.predictions") == [(0,)]


def test_untrusted_type_is_refused_even_with_a_matching_checksum(demo):
    """Someone who can write both the artifact and the registry row still cannot make dwml load an
    arbitrary type: skops only builds the types dwml trusts."""
    from sklearn.preprocessing import Normalizer

    from dwml_py.training import TrainedModel

    path = demo["DWML_DUCKDB_PATH"]
    artifact = artifact_path(path)
    model = TrainedModel.from_bytes(artifact.read_bytes())
    model.preprocessor = Normalizer()
    forged = model.to_bytes()
    artifact.write_bytes(forged)
    sql_exec(path, f"update dwml.model_versions set artifact_sha256 = '{hashlib.sha256(forged).hexdigest()}'")
    result = invoke("predict", "churn")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Normalizer" in result.output and "trusted" in result.output
    assert sql_rows(path, "select count(*) from dwml.predictions") == [(0,)]


def _profiles_with_a_secret(folder: Path) -> Path:
    folder.mkdir()
    (folder / "profiles.yml").write_text(
        "dwml_demo:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('DWML_DUCKDB_PATH') }}\"\n"
        "      password: \"{{ env_var('DWML_TEST_SECRET') }}\"\n      threads: 1\n")
    return folder


def test_profile_secrets_are_never_printed_logged_or_stored(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_TEST_SECRET", SECRET)
    profiles = str(_profiles_with_a_secret(tmp_path / "profiles"))
    outputs = []
    for args in (["doctor"], ["train", "churn", *FAST_XGBOOST], ["deploy", "churn", "--version", "2"],
                 ["predict", "churn"], ["drift", "churn"], ["runs", "list"], ["status"]):
        for fmt in ([], ["--json"]):
            result = invoke(*args, "--profiles-dir", profiles, "--debug", *fmt)
            outputs.append(result.output)
    assert "Trained churn version 2" in "".join(outputs)  # the commands really ran with this profile
    assert not [o for o in outputs if SECRET in o]

    # Not in any text column of any table (runs store the connection settings, redacted).
    con = duckdb.connect(str(demo["DWML_DUCKDB_PATH"]), read_only=True)
    try:
        text_columns = con.sql("select table_schema, table_name, column_name from information_schema.columns "
                               "where data_type = 'VARCHAR'").fetchall()
        for schema, table, column in text_columns:
            found = con.execute(f'select count(*) from "{schema}"."{table}" where "{column}" like ?',
                                [f"%{SECRET}%"]).fetchone()[0]
            assert found == 0, f"{schema}.{table}.{column} holds the secret"
    finally:
        con.close()

    # Not in dbt's logs, dbt's target folder, nor any artifact.
    for folder in (demo["DBT_LOG_PATH"], demo["DBT_TARGET_PATH"], demo["DWML_ARTIFACT_DIR"]):
        for file in Path(folder).rglob("*"):
            if not file.is_file():
                continue
            data = file.read_bytes()
            assert SECRET.encode() not in data, file
            if zipfile.is_zipfile(file):
                with zipfile.ZipFile(file) as archive:
                    for name in archive.namelist():
                        assert SECRET.encode() not in archive.read(name), f"{file}!{name}"


def test_audit_log_only_grows(demo):
    path = demo["DWML_DUCKDB_PATH"]
    before = sql_rows(path, "select * from dwml.audit_log order by occurred_at, event_id")
    assert before, "training and deploying the demo must have audited something"
    ok("train", "churn", *FAST_XGBOOST)
    ok("deploy", "churn", "--version", "2")
    ok("deploy", "churn", "--version", "1", "--reason", "rollback drill")
    after = sql_rows(path, "select * from dwml.audit_log order by occurred_at, event_id")
    assert after[:len(before)] == before  # nothing earlier changed or disappeared
    assert len(after) > len(before)


def test_no_code_path_updates_or_deletes_audit_rows():
    """Only dwml_py/audit.py writes the audit log, and it has no UPDATE or DELETE at all."""
    writers = []
    for module in (REPO_ROOT / "dwml_py").rglob("*.py"):
        text = module.read_text()
        if re.search(r"""["']audit_log["']""", text) and module.name not in ("tables.py", "audit.py"):
            writers.append(module.name)
    audit = (REPO_ROOT / "dwml_py" / "audit.py").read_text().lower()
    assert not re.search(r"\b(update|delete)\s*\(|\b(update|delete from)\b\s+\w", audit)
    assert "exp.update" not in audit and "exp.delete" not in audit
    assert writers == [], f"modules naming the audit_log table outside audit.py: {writers}"


# -- issue 18: secrets at any depth of the profile, writes confined to the project, batch namespaces --

NESTED_SECRET = "s3-nested-5ecret-9d2e"


def _profiles_with_nested_secrets(folder: Path, refused: bool) -> Path:
    """A DuckDB target passing a secret through `settings:`, dbt-duckdb's documented way to give S3
    credentials. `refused`: a setting DuckDB does not know comes first, so connecting fails on it."""
    folder.mkdir()
    first = ("        dwml_unknown_secret_setting: \"{{ env_var('DWML_TEST_SECRET') }}\"\n" if refused else "")
    (folder / "profiles.yml").write_text(
        "dwml_demo:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('DWML_DUCKDB_PATH') }}\"\n      threads: 1\n      settings:\n" + first +
        "        http_proxy_password: \"{{ env_var('DWML_TEST_SECRET') }}\"\n"
        # a nested value is masked wherever it appears, so this one equals a setting dwml itself
        # makes (batch scoring's memory limit): settings statements must still reach DuckDB intact
        "        memory_limit: 384MB\n")
    return folder


def _nowhere_but_the_profile(demo, secret: str) -> None:
    """`secret` is in no text column of any table, no file of dbt's logs and target, no artifact."""
    con = duckdb.connect(str(demo["DWML_DUCKDB_PATH"]), read_only=True)
    try:
        text_columns = con.sql("select table_schema, table_name, column_name from information_schema.columns "
                               "where data_type = 'VARCHAR'").fetchall()
        for schema, table, column in text_columns:
            found = con.execute(f'select count(*) from "{schema}"."{table}" where "{column}" like ?',
                                [f"%{secret}%"]).fetchone()[0]
            assert found == 0, f"{schema}.{table}.{column} holds the secret"
    finally:
        con.close()
    for folder in (demo["DBT_LOG_PATH"], demo["DBT_TARGET_PATH"], demo["DWML_ARTIFACT_DIR"]):
        for file in Path(folder).rglob("*"):
            if file.is_file():
                assert secret.encode() not in file.read_bytes(), file


def test_a_refused_nested_setting_never_shows_its_secret(demo, tmp_path, monkeypatch):
    """The issue's case: DuckDB refuses a `SET` from `settings:` and the failing SQL used to travel
    into the error of `dwml models list` and `dwml doctor --json`."""
    monkeypatch.setenv("DWML_TEST_SECRET", NESTED_SECRET)
    profiles = str(_profiles_with_nested_secrets(tmp_path / "profiles", refused=True))
    for args in (["models", "list"], ["doctor"], ["runs", "list"], ["status"], ["predict", "churn"],
                 ["train", "churn", *FAST_XGBOOST]):
        for extra in ([], ["--json"], ["--debug"]):
            result = invoke(*args, "--profiles-dir", profiles, *extra)
            assert result.exit_code == 1, result.output
            assert NESTED_SECRET not in result.output, (args, extra)
            if args[0] != "doctor":
                assert "dwml_unknown_secret_setting" in result.output  # the setting is named, its value never
    _nowhere_but_the_profile(demo, NESTED_SECRET)


def test_nested_profile_secrets_are_never_printed_logged_or_stored(demo, tmp_path, monkeypatch):
    """A nested setting DuckDB accepts: the whole flow runs with it, and its value appears nowhere."""
    monkeypatch.setenv("DWML_TEST_SECRET", NESTED_SECRET)
    profiles = str(_profiles_with_nested_secrets(tmp_path / "profiles", refused=False))
    outputs = [invoke(*args, "--profiles-dir", profiles, "--json").output
               for args in (["train", "churn", *FAST_XGBOOST], ["deploy", "churn", "--version", "2"],
                            ["predict", "churn"], ["doctor"], ["check", "customer_features"])]
    assert '"version": 2' in outputs[0]  # the commands really ran with this profile
    assert not [o for o in outputs if NESTED_SECRET in o]
    _nowhere_but_the_profile(demo, NESTED_SECRET)


def test_reports_and_exposures_stay_in_the_project_and_keep_files_dwml_did_not_write(project_copy, tmp_path):
    """`dwml report --output` and `dwml docs exposures --output` wrote any absolute or `..` path and
    replaced files dwml had not written."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    precious = outside / "notes.html"
    precious.write_text("mine")
    for args in (["report", "churn", "--no-rebuild-holdout", "--output", str(precious)],
                 ["report", "churn", "--no-rebuild-holdout", "--output", "../elsewhere/card.html"],
                 ["docs", "exposures", "--output", str(outside / "x.yml"), "--force"]):
        result = invoke(*args)
        assert result.exit_code == 1 and "outside the dbt project" in result.output, result.output
        assert "--allow-outside-project" in result.output
    assert sorted(p.name for p in outside.iterdir()) == ["notes.html"] and precious.read_text() == "mine"

    # With the flag a person may write outside, but still never over a file dwml did not write.
    result = invoke("report", "churn", "--no-rebuild-holdout", "--output", str(precious), "--allow-outside-project")
    assert result.exit_code == 1 and "dwml did not generate it" in result.output
    assert precious.read_text() == "mine"
    card = ok("report", "churn", "--no-rebuild-holdout", "--output", str(outside / "card.html"),
              "--allow-outside-project")
    assert Path(card["path"]).read_text().startswith("<!DOCTYPE html>\n<!-- Generated by dwml")
    ok("report", "churn", "--no-rebuild-holdout", "--output", str(outside / "card.html"), "--allow-outside-project")

    # Inside the project: a file dwml did not write is kept unless --force, on every writing command.
    mine = project_copy.project_dir / "models" / "notes.yml"
    mine.write_text("version: 2\n")
    for args in (["docs", "exposures", "--output", "models/notes.yml"],
                 ["report", "churn", "--no-rebuild-holdout", "--output", "models/notes.yml"]):
        result = invoke(*args)
        assert result.exit_code == 1 and "dwml did not generate it" in result.output, result.output
    assert mine.read_text() == "version: 2\n"
    assert ok("docs", "exposures", "--output", "models/notes.yml", "--force")["written"] is True


def test_agents_cannot_write_or_read_outside_the_project(project_copy, tmp_path, monkeypatch):
    """Over MCP there is no way out: no people-only flag, no absolute or `..` path, no file from
    outside the project logged as an artifact (it would be copied into the artifact store)."""
    from dwml_py.call_context import CallContext
    from dwml_py.errors import InputError
    from dwml_py.tools.registry import load_tools

    tools, agent = load_tools(), CallContext(agent=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)  # an agent's relative paths are the project's, not the server's folder
    secret_file = outside / "id_rsa"
    secret_file.write_text("PRIVATE KEY")
    run = tools["create_experiment"].invoke(project_copy, {"experiment": "agent"}, context=agent)["run_id"]
    refused = [
        ("create_report", {"name": "churn", "output": str(outside / "card.html"), "rebuild_holdout": False}),
        ("create_report", {"name": "churn", "output": "../card.html", "rebuild_holdout": False}),
        ("create_report", {"name": "churn", "output": "models/x.html", "allow_outside_project": True}),
        ("write_exposures", {"output": str(outside / "x.yml"), "force": True}),
        ("write_exposures", {"output": "../../x.yml", "force": True}),
        ("log_metrics", {"run_id": run, "artifacts": [str(secret_file)]}),
        ("log_metrics", {"run_id": run, "artifacts": ["../id_rsa"]}),
        ("create_feature_pipeline", {"name": "x", "target_column": "customer_labels.churned_30d",
                                     "directory": "/tmp"}),
        ("deploy_model", {"name": "churn", "version": 1, "scaffold": True, "scaffold_dir": "../../models"}),
    ]
    for name, arguments in refused:
        with pytest.raises(InputError) as error:
            tools[name].invoke(project_copy, arguments, context=agent)
        assert any(word in error.value.message for word in ("outside", "not offered to agents", "inside the dbt")), \
            (name, error.value.message)
    assert [p.name for p in outside.iterdir()] == ["id_rsa"]
    written = {p.name for p in tmp_path.rglob("*") if not p.is_relative_to(project_copy.project_dir)}
    assert not written & {"card.html", "x.yml", "x.html", "x.sql"}
    stored = [p for p in Path(os.environ["DWML_ARTIFACT_DIR"]).rglob("*") if p.is_file()]
    assert not [p for p in stored if p.read_bytes() == b"PRIVATE KEY"]
    # inside the project an agent may write: relative paths are taken from the project
    card = tools["create_report"].invoke(project_copy, {"name": "churn", "output": "reports/card.html",
                                                        "rebuild_holdout": False}, context=agent)
    assert Path(card["path"]) == (project_copy.project_dir / "reports" / "card.html").resolve()


def test_a_batch_id_cannot_replace_another_sources_rows(demo):
    """`dwml predict --batch-id 'dbt:<invocation>:<model>'` replaced every SQL-scored row of that
    dbt run with batch rows. A batch belongs to its source: batch, sql or rest."""
    path = demo["DWML_DUCKDB_PATH"]
    batch = ok("predict", "churn")
    sql_exec(path, "insert into dwml.predictions select model_name, version, entity_key, snapshot_at, score, "
                   "predicted_label, 'dbt:inv-1:churn_scores', 'sql', scored_at from dwml.predictions "
                   f"where batch_id = '{batch['batch_id']}'")
    sql_exec(path, "insert into dwml.predictions select model_name, version, entity_key, snapshot_at, score, "
                   "predicted_label, 'rest-20240101T000000-abc', 'rest', scored_at from dwml.predictions "
                   f"where batch_id = '{batch['batch_id']}' limit 7")
    before = sql_rows(path, "select source, count(*) from dwml.predictions group by 1 order by 1")

    for taken in ("dbt:inv-1:churn_scores", "rest-20240101T000000-abc"):
        result = invoke("predict", "churn", "--batch-id", taken)
        assert result.exit_code == 1 and "reserved for batches of source" in result.output, result.output
    assert sql_rows(path, "select source, count(*) from dwml.predictions group by 1 order by 1") == before

    # Even a batch id shared across sources (a hand-made one) replaces only the batch source's rows.
    sql_exec(path, "update dwml.predictions set batch_id = 'shared' where source in ('sql', 'rest')")
    assert ok("predict", "churn", "--batch-id", "shared")["replaced_rows"] == 0
    again = ok("predict", "churn", "--batch-id", "shared")
    assert again["replaced_rows"] == again["rows"] == batch["rows"]
    counts = dict(sql_rows(path, "select source, count(*) from dwml.predictions where batch_id = 'shared' "
                                 "group by 1"))
    assert counts == {"batch": batch["rows"], "sql": batch["rows"], "rest": 7}

    # The dbt side: the macro that replaces a SQL-scored batch removes only rows of source 'sql'.
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.project import Project

    run = run_dbt(Project.locate(DEMO_DIR), ["run-operation", "dwml_delete_prediction_batch", "--args",
                                              "{relation: dwml.predictions, batch_id: shared}"])
    assert run.success
    counts = dict(sql_rows(path, "select source, count(*) from dwml.predictions where batch_id = 'shared' "
                                 "group by 1"))
    assert counts == {"batch": batch["rows"], "rest": 7}
