"""Profile resolution: search order, env_var rendering, targets, and the errors that say what to fix."""

import pytest

from dwml_py.errors import ConfigError, ProfileError
from dwml_py.project import Project

PROFILE = """
dwml_demo:
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


def test_env_var_defaults_and_overrides(demo_dir, profiles_dir, monkeypatch):
    project = Project.locate(demo_dir, profiles_dir)
    assert project.profile.target_name == "dev"
    assert project.profile.settings["path"] == "default.duckdb"
    assert project.profile.settings["threads"] == 3
    monkeypatch.setenv("MY_DB", "/data/x.duckdb")
    monkeypatch.setenv("MY_TARGET", "prod")
    project = Project.locate(demo_dir, profiles_dir)
    assert project.profile.target_name == "prod"
    assert project.profile.settings["path"] == "prod.duckdb"


def test_target_flag_and_env(demo_dir, profiles_dir, monkeypatch):
    assert Project.locate(demo_dir, profiles_dir, target="prod").profile.target_name == "prod"
    monkeypatch.setenv("DBT_TARGET", "prod")
    assert Project.locate(demo_dir, profiles_dir).profile.target_name == "prod"


def test_dbt_profiles_dir_env_is_used(demo_dir, profiles_dir, monkeypatch):
    monkeypatch.setenv("DBT_PROFILES_DIR", str(profiles_dir))
    profile = Project.locate(demo_dir).profile
    assert profile.profiles_dir == profiles_dir
    assert profile.settings["path"] == "default.duckdb"


def test_default_profile_is_the_checkouts_embedded_duckdb(project, duckdb_path):
    profile = project.profile
    assert profile.adapter_type == "duckdb"
    assert profile.settings["path"] == str(duckdb_path)  # tests point DWML_DUCKDB_PATH at a temp file


def test_secrets_are_redacted(demo_dir, profiles_dir):
    profile = Project.locate(demo_dir, profiles_dir, target="prod").profile
    assert profile.settings["password"] == "hunter2"
    assert profile.redacted()["password"] == "****"
    assert "hunter2" not in repr(profile.redacted())


def test_missing_env_var_is_named(demo_dir, tmp_path):
    (tmp_path / "profiles.yml").write_text(
        "dwml_demo:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('DWML_TEST_UNSET') }}\"\n")
    with pytest.raises(ProfileError) as err:
        Project.locate(demo_dir, tmp_path).profile
    assert "DWML_TEST_UNSET" in err.value.message
    assert "export DWML_TEST_UNSET" in err.value.hint


def test_unknown_target_lists_outputs(demo_dir, profiles_dir):
    with pytest.raises(ProfileError) as err:
        Project.locate(demo_dir, profiles_dir, target="prdo").profile
    assert "'prdo'" in err.value.message
    assert "did you mean 'prod'" in err.value.hint


def test_missing_profile_name(demo_dir, tmp_path):
    (tmp_path / "profiles.yml").write_text("other:\n  target: dev\n  outputs: {dev: {type: duckdb}}\n")
    with pytest.raises(ProfileError) as err:
        Project.locate(demo_dir, tmp_path).profile
    assert "Profile 'dwml_demo'" in err.value.message


def test_no_profiles_file_lists_places(demo_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ProfileError) as err:
        Project.locate(demo_dir, empty).profile
    assert str(empty / "profiles.yml") in err.value.message
    assert "--profiles-dir" in err.value.hint


def test_invalid_yaml(demo_dir, tmp_path):
    (tmp_path / "profiles.yml").write_text("dwml_demo: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        Project.locate(demo_dir, tmp_path).profile


def test_project_dir_must_hold_dbt_project(tmp_path):
    with pytest.raises(ConfigError) as err:
        Project.locate(tmp_path)
    assert "--project-dir" in err.value.hint


def test_project_found_from_a_subfolder(demo_dir, monkeypatch):
    monkeypatch.chdir(demo_dir / "models")
    assert Project.locate().project_dir == demo_dir


def test_dbt_flags_name_project_profiles_and_target(project, demo_dir):
    flags = project.dbt_flags()
    assert flags[flags.index("--project-dir") + 1] == str(demo_dir)
    assert flags[flags.index("--target") + 1] == "dev"


def test_dwml_own_dbt_package_is_not_a_project_to_run_in(repo_root, monkeypatch):
    """The checkout's root is the dbt package projects install; dwml points at the demo instead."""
    monkeypatch.chdir(repo_root / "macros")
    with pytest.raises(ConfigError) as err:
        Project.locate()
    assert "dwml's own dbt package" in err.value.message
    assert str(repo_root / "demo") in err.value.hint
