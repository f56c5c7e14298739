"""Profile resolution: search order, env_var rendering, targets, and the errors that say what to fix."""

import pytest

from dwml_py.errors import ConfigError, ProfileError
from dwml_py.project import Project

PROFILE = """
dwml:
  target: "{{ env_var('MY_TARGET', 'dev') }}"
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('MY_DB', 'default.duckdb') }}"
      threads: "{{ env_var('MY_THREADS', '3') | as_number }}"
    prod:
      type: duckdb
      path: prod.duckdb
      password: "{{ env_var('MY_SECRET', 'hunter2') }}"
"""


@pytest.fixture
def profiles_dir(tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "profiles.yml").write_text(PROFILE)
    return d


def test_env_var_defaults_and_overrides(repo_root, profiles_dir, monkeypatch):
    project = Project.locate(repo_root, profiles_dir)
    assert project.profile.target_name == "dev"
    assert project.profile.settings["path"] == "default.duckdb"
    assert project.profile.settings["threads"] == 3
    monkeypatch.setenv("MY_DB", "/data/x.duckdb")
    monkeypatch.setenv("MY_TARGET", "prod")
    project = Project.locate(repo_root, profiles_dir)
    assert project.profile.target_name == "prod"
    assert project.profile.settings["path"] == "prod.duckdb"


def test_target_flag_and_env(repo_root, profiles_dir, monkeypatch):
    assert Project.locate(repo_root, profiles_dir, target="prod").profile.target_name == "prod"
    monkeypatch.setenv("DBT_TARGET", "prod")
    assert Project.locate(repo_root, profiles_dir).profile.target_name == "prod"


def test_dbt_profiles_dir_env_is_used(repo_root, profiles_dir, monkeypatch):
    monkeypatch.setenv("DBT_PROFILES_DIR", str(profiles_dir))
    profile = Project.locate(repo_root).profile
    assert profile.profiles_dir == profiles_dir
    assert profile.settings["path"] == "default.duckdb"


def test_default_profile_is_the_checkouts_embedded_duckdb(project, duckdb_path):
    profile = project.profile
    assert profile.adapter_type == "duckdb"
    assert profile.settings["path"] == str(duckdb_path)  # tests point DWML_DUCKDB_PATH at a temp file


def test_secrets_are_redacted(repo_root, profiles_dir):
    profile = Project.locate(repo_root, profiles_dir, target="prod").profile
    assert profile.settings["password"] == "hunter2"
    assert profile.redacted()["password"] == "****"
    assert "hunter2" not in repr(profile.redacted())


def test_missing_env_var_is_named(repo_root, tmp_path):
    (tmp_path / "profiles.yml").write_text(
        "dwml:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('DWML_TEST_UNSET') }}\"\n")
    with pytest.raises(ProfileError) as err:
        Project.locate(repo_root, tmp_path).profile
    assert "DWML_TEST_UNSET" in err.value.message
    assert "export DWML_TEST_UNSET" in err.value.hint


def test_unknown_target_lists_outputs(repo_root, profiles_dir):
    with pytest.raises(ProfileError) as err:
        Project.locate(repo_root, profiles_dir, target="prdo").profile
    assert "'prdo'" in err.value.message
    assert "did you mean 'prod'" in err.value.hint


def test_missing_profile_name(repo_root, tmp_path):
    (tmp_path / "profiles.yml").write_text("other:\n  target: dev\n  outputs: {dev: {type: duckdb}}\n")
    with pytest.raises(ProfileError) as err:
        Project.locate(repo_root, tmp_path).profile
    assert "Profile 'dwml'" in err.value.message


def test_no_profiles_file_lists_places(repo_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ProfileError) as err:
        Project.locate(repo_root, empty).profile
    assert str(empty / "profiles.yml") in err.value.message
    assert "--profiles-dir" in err.value.hint


def test_invalid_yaml(repo_root, tmp_path):
    (tmp_path / "profiles.yml").write_text("dwml: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        Project.locate(repo_root, tmp_path).profile


def test_project_dir_must_hold_dbt_project(tmp_path):
    with pytest.raises(ConfigError) as err:
        Project.locate(tmp_path)
    assert "--project-dir" in err.value.hint


def test_project_found_from_a_subfolder(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root / "models")
    assert Project.locate().project_dir == repo_root


def test_dbt_flags_name_project_profiles_and_target(project, repo_root):
    flags = project.dbt_flags()
    assert flags[flags.index("--project-dir") + 1] == str(repo_root)
    assert flags[flags.index("--target") + 1] == "dev"
