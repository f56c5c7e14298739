"""The commented meta.dwml example of `dwml init --model`: inserted under the model's entry without
changing a line that was there, and valid YAML in the right place once uncommented."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dwml_py.errors import ConfigError, NotFoundError
from dwml_py.meta_example import find_model, marker, write_example


def _project(tmp_path: Path, yml: str | None, sql: str = "select 1 as customer_id") -> Path:
    models = tmp_path / "models" / "ml"
    models.mkdir(parents=True)
    (models / "customer_features.sql").write_text(sql)
    (models / "other.sql").write_text("select 1 as id")
    if yml is not None:
        (models / "schema.yml").write_text(yml)
    return tmp_path


def uncommented(before: str, after: str, new_file: bool = False) -> str:
    """`after` with the lines `dwml init` added uncommented as its text says: one "# " removed from
    each (its own explanation lines dropped)."""
    old = before.splitlines()
    lines, i = [], 0
    for line in after.splitlines():
        if (i < len(old) and line == old[i]) or (new_file and not line.lstrip().startswith("#")):
            lines.append(line)
            i += 1
            continue
        assert line.lstrip().startswith("#"), f"an added line is not a comment: {line!r}"
        if marker("customer_features") in line or line.lstrip().startswith("# then `dbt build`"):
            continue
        lines.append(line.replace("# ", "", 1))
    assert new_file or i == len(old), "every line that was there is still there, in order"
    return "\n".join(lines)


def _entry(text: str, name: str = "customer_features") -> dict:
    return next(m for m in yaml.safe_load(text)["models"] if m["name"] == name)


def _write(project: Path, model: str = "customer_features"):
    return write_example(find_model(project, ["models"], model))


CASES = {
    "no config": """\
version: 2
models:
  - name: customer_features
    columns:
      - name: customer_id
        data_tests: [unique, not_null]
  - name: other
""",
    "config without meta": """\
version: 2
models:
  - name: customer_features
    description: One row per customer.
    config:
      materialized: table
    columns:
      - name: customer_id
""",
    "config.meta with an owner": """\
version: 2

models:
    -   name: customer_features
        description: >
            One row per customer,
            as of each month.
        config:
            meta:
                owner: growth
            tags: [ml]
""",
    "the older entry-level meta": """\
models:
  - name: customer_features
    meta:
      owner: growth
    columns: [{name: customer_id, tests: [unique]}]
""",
    "an empty config": """\
models:
  - name: customer_features
    config:
""",
    "config in flow style": """\
models:
  - name: customer_features
    config: {materialized: table}
""",
}


@pytest.mark.parametrize("case", CASES)
def test_the_example_becomes_the_spec_in_place_once_uncommented(tmp_path, case):
    before = CASES[case]
    project = _project(tmp_path, before)
    path, action, _ = _write(project)
    assert (path, action) == (project / "models" / "ml" / "schema.yml", "inserted")
    after = path.read_text()
    assert yaml.safe_load(after) == yaml.safe_load(before), "as comments, the example changes nothing for dbt"

    text = uncommented(before, after)
    if case == "config in flow style":  # comments cannot go inside {...}: the user merges by hand
        assert "merge the config below" in after
        return
    entry, old = _entry(text), _entry(before)
    spec = entry["config"]["meta"]["dwml"] if "config" in entry and "dwml" in (entry["config"].get("meta") or {}) \
        else entry["meta"]["dwml"]
    columns = old.get("columns") or []
    assert spec["entity"] == ("customer_id" if columns else "<key column>")  # the column with a unique test
    assert spec["models"] == {"<ml model>": {"task": "classification", "label": "<label column>"}}
    assert "timestamp" not in spec, "the timestamp is optional and stays a comment"
    assert entry["description"] == old.get("description", "<what one row of customer_features is>")
    owner = (entry.get("config") or {}).get("meta", {}).get("owner") or entry.get("meta", {}).get("owner")
    assert owner == ((old.get("config") or {}).get("meta") or old.get("meta") or {}).get("owner",
                                                                                       "<team or person>")
    for key, value in old.items():  # what the entry had is still there
        if key not in ("config", "meta"):
            assert entry[key] == value
    if (old.get("config") or {}).get("materialized"):
        assert entry["config"]["materialized"] == "table"


def test_a_second_run_and_a_declared_spec_change_nothing(tmp_path):
    project = _project(tmp_path, CASES["no config"])
    _write(project)
    text = (project / "models" / "ml" / "schema.yml").read_text()
    path, action, detail = _write(project)
    assert action == "unchanged" and "earlier `dwml init`" in detail and path.read_text() == text

    declared = "models:\n  - name: customer_features\n    config:\n      meta:\n        dwml: {entity: id}\n"
    (path).write_text(declared)
    _, action, detail = _write(project)
    assert action == "unchanged" and "already declares meta.dwml (entity)" in detail
    assert path.read_text() == declared


def test_a_model_without_a_yml_entry_gets_a_new_file_beside_its_sql(tmp_path):
    project = _project(tmp_path, None)
    path, action, _ = _write(project)
    assert (path, action) == (project / "models" / "ml" / "customer_features.yml", "created")
    entry = _entry(uncommented("", path.read_text(), new_file=True))
    assert entry["config"]["meta"]["dwml"]["entity"] == "<key column>"
    assert entry["config"]["meta"]["owner"] == "<team or person>" and entry["description"]


def test_a_yml_of_the_models_name_that_describes_another_model_is_not_touched(tmp_path):
    project = _project(tmp_path, None)
    taken = project / "models" / "ml" / "customer_features.yml"
    taken.write_text("models:\n  - name: other\n")
    with pytest.raises(ConfigError, match="has no entry for the model 'customer_features'"):
        _write(project)
    assert taken.read_text() == "models:\n  - name: other\n"


def test_an_unknown_model_is_named_with_the_closest(tmp_path):
    project = _project(tmp_path, CASES["no config"])
    with pytest.raises(NotFoundError) as caught:
        find_model(project, ["models"], "customer_feature")
    assert "'customer_feature'" in caught.value.message and "customer_features" in caught.value.hint


def test_the_modules_example_runs():
    import doctest

    from dwml_py import meta_example

    assert doctest.testmod(meta_example).failed == 0
