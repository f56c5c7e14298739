"""A commented `meta.dwml` example written into the yml of a model the user names (`dwml init --model`).

The example goes where the spec belongs, under the model's entry (`config: meta: dwml:`), as
comments: nothing changes for dbt until the user uncomments it, and no existing line is changed.
The lines are inserted after the entry's `config:` or `meta:` line when it has one (so that
uncommenting gives valid YAML), else after its first line; a model with no yml entry gets a new
yml file beside its SQL. What the entry already has (a description, meta.owner) is left out.

>>> print("\\n".join(example_lines("orders", indent=4, config=True, meta=True, description=True, owner=True,
...                                entity="order_id")[2:6]))
    # description: <what one row of orders is>
    # config:
    #   meta:
    #     owner: <team or person>
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dwml_py.errors import ConfigError, NotFoundError, did_you_mean

MODEL_SUFFIXES = (".sql", ".py")
YML_SUFFIXES = (".yml", ".yaml")


def marker(model: str) -> str:
    """The first line of the example; finding it again means an earlier `dwml init` wrote it."""
    return f"dwml init: the ML spec of {model}."


@dataclass
class ModelEntry:
    """Where a model is described: its yml file and the parts of its entry the example needs."""

    model: str
    sql: Path | None
    yml: Path | None = None
    entry: yaml.MappingNode | None = None
    columns: list[dict] = field(default_factory=list)

    @property
    def new_yml(self) -> Path:
        """Where a model without a yml entry gets one: beside its SQL."""
        return self.sql.with_suffix(".yml")

    def key(self, node: yaml.MappingNode | None, name: str):
        for key, value in (node.value if isinstance(node, yaml.MappingNode) else []):
            if key.value == name:
                return key, value
        return None, None


def find_model(project_dir: Path, model_paths: list[str], model: str) -> ModelEntry:
    """The model's SQL (or Python) file and its yml entry; NotFoundError names the closest models,
    ConfigError a model whose example would have nowhere to go. Writes nothing."""
    names: set[str] = set()
    found = ModelEntry(model=model, sql=None)
    for base in model_paths:
        for path in sorted((project_dir / base).rglob("*")):
            if path.suffix in MODEL_SUFFIXES:
                names.add(path.stem)
                if path.stem == model and found.sql is None:
                    found.sql = path
            elif path.suffix in YML_SUFFIXES and path.is_file():
                for name, entry in _entries(path):
                    names.add(name)
                    if name == model and found.entry is None:
                        found.yml, found.entry = path, entry
    if found.sql is None and found.entry is None:
        raise NotFoundError(f"No model named {model!r} in {', '.join(model_paths)} of {str(project_dir)!r}.",
                            hint=did_you_mean(model, sorted(names)) + " (pass --model with one of the project's "
                            "models, the feature table of your ML model).")
    if found.entry is None and found.new_yml.exists():
        raise ConfigError(f"{str(found.new_yml)!r} exists but has no entry for the model {model!r}, so dwml does not "
                          "know where its example goes.",
                          hint=f"add `- name: {model}` under `models:` there, then run `dwml init --model {model}` "
                               "again.")
    if found.entry is not None:
        data = yaml.safe_load(yaml.serialize(found.entry)) or {}
        found.columns = [c for c in data.get("columns") or [] if isinstance(c, dict)]
    return found


def _entries(path: Path):
    """(name, mapping node) of each `models:` entry of a yml file; unreadable files are skipped,
    as dbt would report them itself."""
    try:
        root = yaml.compose(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    if not isinstance(root, yaml.MappingNode):
        return
    for key, value in root.value:
        if key.value == "models" and isinstance(value, yaml.SequenceNode):
            for item in value.value:
                if isinstance(item, yaml.MappingNode):
                    name = next((v.value for k, v in item.value if k.value == "name"
                                 and isinstance(v, yaml.ScalarNode)), None)
                    if name:
                        yield str(name), item


def write_example(found: ModelEntry) -> tuple[Path, str, str]:
    """Insert (or write) the commented example; returns (file, action, detail), action being
    "inserted", "created" or "unchanged"."""
    model = found.model
    if found.entry is None:
        target = found.new_yml
        lines = ["version: 2", "models:", f"  - name: {model}",
                 *example_lines(model, indent=4, config=True, meta=True, description=True, owner=True,
                                entity=_entity_guess(found.columns))]
        target.write_text("\n".join(lines) + "\n")
        return target, "created", f"a yml entry for {model} with a commented meta.dwml example"

    text = found.yml.read_text()
    if marker(model) in text:
        return found.yml, "unchanged", f"the commented meta.dwml example of {model} from an earlier `dwml init` is there"
    spec = _declared_spec(found)
    if spec is not None:
        return found.yml, "unchanged", f"{model} already declares meta.dwml ({', '.join(spec) or 'empty'})"

    entry = found.entry
    _, description = found.key(entry, "description")
    has_description = isinstance(description, yaml.ScalarNode) and bool(description.value.strip())
    config_key, config = found.key(entry, "config")
    meta_key, meta = found.key(config, "meta")
    if meta is None:
        meta_key, meta = found.key(entry, "meta")  # the older place for meta, still read by dbt
    _, owner = found.key(meta, "owner")
    entity = _entity_guess(found.columns)
    name_key, name_value = found.key(entry, "name")  # `- name: X`: one line, and the entry's indentation
    entry_indent = name_key.start_mark.column

    insertions: list[tuple[int, list[str]]] = []
    if _block_mapping(meta, empty_ok=True):
        insertions.append((_line_after(meta_key), example_lines(
            model, indent=_child_indent(meta_key, meta), config=False, meta=False, description=False,
            owner=owner is None, entity=entity)))
        if not has_description:
            insertions.append((_line_after(name_value), _description_lines(model, entry_indent)))
    elif meta is None and _block_mapping(config, empty_ok=True):
        insertions.append((_line_after(config_key), example_lines(
            model, indent=_child_indent(config_key, config), config=False, meta=True, description=False,
            owner=True, entity=entity)))
        if not has_description:
            insertions.append((_line_after(name_value), _description_lines(model, entry_indent)))
    else:
        # no config at all, or one in flow style ({...}) that comments cannot go into
        lines = example_lines(model, indent=entry_indent, config=True, meta=True, description=not has_description,
                              owner=owner is None, entity=entity)
        if config is not None or meta is not None:
            lines.insert(2, " " * entry_indent + "# (merge the config below into this model's existing config)")
        insertions.append((_line_after(name_value), lines))

    source = text.splitlines()
    for at, lines in sorted(insertions, key=lambda item: item[0], reverse=True):
        source[at:at] = lines
    found.yml.write_text("\n".join(source) + "\n")
    return found.yml, "inserted", f"a commented meta.dwml example under {model} (uncomment it and fill in the <...>)"


def example_lines(model: str, indent: int, config: bool, meta: bool, description: bool, owner: bool,
                  entity: str) -> list[str]:
    """The example as comment lines at `indent`: removing one "# " from each gives valid YAML.
    `config`/`meta` say which of the enclosing keys to write; `description`/`owner` whether the
    entry lacks them (dwml's governance gate asks for both)."""
    head = [f"# {marker(model)} Uncomment it (remove one \"# \" from each line), fill in the <...>,",
            "# then `dbt build` and `dwml train <ml model>`."]
    body: list[str] = []
    depth = 0
    if description:
        body.append(f"description: <what one row of {model} is>")
    if config:
        body.append("config:")
        depth += 2
    if meta:
        body.append(" " * depth + "meta:")
        depth += 2
    pad = " " * depth
    if owner:
        body.append(f"{pad}owner: <team or person>")
    body += [
        f"{pad}dwml:",
        f"{pad}  entity: {entity}  # the key of one row (a list for several columns)",
        f"{pad}  # timestamp: <as-of date column>  # optional: without one, training splits the rows at random",
        f"{pad}  models:",
        f"{pad}    <ml model>:  # the name for `dwml train`",
        f"{pad}      task: classification  # or regression",
        f"{pad}      label: <label column>  # in this model; or {{model: <label model>, column: <column>, "
        "horizon_days: 30}",
    ]
    return [" " * indent + line for line in head] + [" " * indent + "# " + line for line in body]


def _description_lines(model: str, indent: int) -> list[str]:
    return [" " * indent + f"# {marker(model)} dwml's governance gate asks for a description (uncomment it):",
            " " * indent + f"# description: <what one row of {model} is>"]


def _declared_spec(found: ModelEntry) -> dict | None:
    data = yaml.safe_load(yaml.serialize(found.entry)) or {}
    for meta in ((data.get("config") or {}).get("meta"), data.get("meta")):
        if isinstance(meta, dict) and "dwml" in meta:
            return meta["dwml"] if isinstance(meta["dwml"], dict) else {}
    return None


def _entity_guess(columns: list[dict]) -> str:
    """The column with a unique test, else the first named like an id, else a placeholder."""
    for column in columns:
        tests = [*(column.get("data_tests") or []), *(column.get("tests") or [])]
        if any(t == "unique" or (isinstance(t, dict) and "unique" in t) for t in tests):
            return str(column.get("name"))
    for column in columns:
        if str(column.get("name", "")).endswith("_id"):
            return str(column["name"])
    return "<key column>"


def _block_mapping(node, empty_ok: bool = False) -> bool:
    if isinstance(node, yaml.MappingNode):
        return not node.flow_style and bool(node.value)
    return empty_ok and isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _child_indent(key: yaml.Node, value: yaml.Node) -> int:
    if isinstance(value, yaml.MappingNode) and value.value:
        return value.value[0][0].start_mark.column
    return key.start_mark.column + 2


def _line_after(node: yaml.Node) -> int:
    """The index of the line after `node` ends (block scalars end at the start of the next line)."""
    return node.end_mark.line + (1 if node.end_mark.column > 0 else 0)
