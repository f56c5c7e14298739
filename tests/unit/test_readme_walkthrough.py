"""The README's "Using dwml in your own dbt project" walks through tests/user_project, which
tests/integration/test_user_project.py and the release check run: the spec it shows is the shop's,
and its commands are the ones they run."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
SECTION = README[README.index("## Using dwml in your own dbt project"):README.index("## Configuration")]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.S)


def test_the_spec_shown_is_the_shops_without_a_timestamp():
    shown = next(yaml.safe_load(b) for b in _blocks("yaml") if "dwml:" in b)["models"][0]
    shop = yaml.safe_load((REPO_ROOT / "tests" / "user_project" / "models" / "ml" / "customer_features.yml")
                          .read_text())["models"][0]
    assert shown == {k: shop[k] for k in ("name", "description", "config")}
    meta = shown["config"]["meta"]
    assert meta["owner"] and shown["description"] and "timestamp" not in meta["dwml"]


def test_the_steps_are_what_the_tests_run():
    commands = [line.split("#")[0].strip() for block in _blocks("bash") for line in block.splitlines()]
    assert "dwml init --model customer_features" in commands  # the release check's call
    assert commands[-4:] == ["dbt build", "dwml train churn", "dwml deploy churn --version 1 --scaffold",
                             "dbt run --select churn_scores"]
    flow = (REPO_ROOT / "tests" / "integration" / "test_user_project.py").read_text()
    for call in ('"deps"', '"build"', '"train", "churn"', '"deploy", ml_model, "--version", "1", "--scaffold"',
                 '"run", "--select", scores'):
        assert call in flow
    assert '"init", "--model", "customer_features"' in (REPO_ROOT / ".ci" / "release_check.py").read_text()
