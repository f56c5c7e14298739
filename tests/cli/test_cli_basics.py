"""The command line in-process: exit codes, one-line errors with hints, --json output."""

import json

import pytest
from typer.testing import CliRunner

from dwml_py import __version__
from dwml_py.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_every_command_has_the_common_flags():
    for args in (["doctor"], ["init"], ["demo", "generate"], ["demo", "run"]):
        help_text = invoke(*args, "--help").output
        for flag in ("--project-dir", "--profiles-dir", "--target", "--json", "--debug"):
            assert flag in help_text, f"{' '.join(args)} lacks {flag}"


def test_doctor_passes_on_the_default_setup():
    result = invoke("doctor", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["dbt project"] == "ok"
    assert status["dbt profile"] == "ok"
    assert status["warehouse"] == "ok"


def test_doctor_names_a_broken_profile_and_the_fix(tmp_path):
    (tmp_path / "profiles.yml").write_text(
        "dwml_demo:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('DWML_NOT_SET_X') }}\"\n")
    result = invoke("doctor", "--profiles-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "FAIL dbt profile" in result.output
    assert "DWML_NOT_SET_X" in result.output
    assert "export DWML_NOT_SET_X" in result.output


def test_doctor_names_an_unknown_target():
    result = invoke("doctor", "--target", "prod", "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["dbt profile"]["status"] == "fail"
    assert "'prod'" in checks["dbt profile"]["detail"]


def test_doctor_names_an_unsupported_adapter(tmp_path):
    (tmp_path / "profiles.yml").write_text("dwml_demo:\n  target: dev\n  outputs:\n    dev:\n      type: oracle\n")
    result = invoke("doctor", "--profiles-dir", str(tmp_path), "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "oracle" in checks["warehouse"]["detail"]
    assert "--target" in checks["warehouse"]["fix"]


def test_doctor_refuses_a_duckdb_file_named_like_the_dwml_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_DUCKDB_PATH", str(tmp_path / "dwml.duckdb"))
    result = invoke("doctor", "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["duckdb file name"]["status"] == "fail"


def test_doctor_reports_a_locked_duckdb_file(duckdb_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(duckdb_path)!r}); "
                               "print('held', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = invoke("doctor", "--json")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1
    check = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["warehouse"]
    assert "locked" in check["detail"]
    assert "one writing process" in check["fix"]


def test_outside_a_project_the_error_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("status")
    assert result.exit_code == 1
    assert "No dbt_project.yml" in result.output
    assert "--project-dir" in result.output
    assert "Traceback" not in result.output


def test_json_error_object(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("status", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"] == "ConfigError"
    assert payload["hint"]


@pytest.mark.parametrize("args,needle", [
    (["--customers", "3"], "customers"),
    (["--months", "2"], "months"),
])
def test_demo_generate_rejects_bad_sizes(args, needle, tmp_path):
    result = invoke("demo", "generate", *args, "--dir", str(tmp_path / "demo"))
    assert result.exit_code == 1
    assert "Invalid demo settings" in result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "demo").exists()  # refused before anything was written
