"""dbt's JSON artifacts (target/manifest.json, catalog.json, run_results.json) as dicts.

They are read as JSON, never through dbt-core internals (whose classes change between releases);
`metadata.dbt_schema_version` says which layout we got. A missing or damaged artifact names the
dbt command that writes it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dwml_py.dbt_artifact_shapes import check_shape
from dwml_py.errors import ConfigError, DwmlError, NotFoundError

# Manifest layouts we read: v10 (dbt 1.6), v11 (dbt 1.7), v12 (dbt 1.8 - 1.11).
SUPPORTED_MANIFEST_VERSIONS = (10, 11, 12)
SUPPORTED_CATALOG_VERSIONS = (1,)
_VERSION_RE = re.compile(r"/(manifest|catalog)/v(\d+)\.json$")
# The dbt command that writes each artifact, for the hint when one is missing or damaged.
WRITTEN_BY = {"manifest.json": "`dbt parse`", "catalog.json": "`dbt docs generate`",
              "run_results.json": "the dbt command (`dbt build`, `dbt test`)"}


def read_json(path: Path) -> dict:
    """Parse a JSON artifact, with orjson when it happens to be installed (2-3x faster)."""
    try:
        import orjson
    except ImportError:
        orjson = None
    try:
        if orjson is not None:
            return orjson.loads(Path(path).read_bytes())
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise NotFoundError(f"No dbt artifact at {str(path)!r}.",
                            hint=f"run {WRITTEN_BY.get(Path(path).name, '`dbt parse`')} in the project.") from None
    except ValueError as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {exc}",
                          hint=f"the file is damaged or half-written; rerun "
                               f"{WRITTEN_BY.get(Path(path).name, '`dbt parse`')} to rewrite it.") from exc


def read_artifact(path: Path, kind: str) -> dict:
    """A dbt JSON artifact (`kind`: manifest, catalog or run_results), refused unless it is shaped as
    dbt writes it where dwml reads it (dwml_py.dbt_artifact_shapes)."""
    return check_shape(read_json(path), kind, str(path))


def schema_version(document: dict, kind: str, where: str = "") -> int:
    """The layout version of a dbt artifact from `metadata.dbt_schema_version`."""
    url = str((document.get("metadata") or {}).get("dbt_schema_version") or "")
    match = _VERSION_RE.search(url)
    if not match or match.group(1) != kind:
        raise ConfigError(
            f"{where or 'The ' + kind} does not look like a dbt {kind}.json: "
            f"metadata.dbt_schema_version is {url or 'missing'!r}.",
            hint=f"point dwml at the {kind}.json that dbt writes into target/ (run {WRITTEN_BY[kind + '.json']}).",
        )
    return int(match.group(2))


def check_version(document: dict, kind: str, supported: tuple[int, ...], where: str) -> int:
    version = schema_version(document, kind, where)
    if version not in supported:
        dbt_version = (document.get("metadata") or {}).get("dbt_version", "unknown")
        known = ", ".join(f"v{v}" for v in supported)
        newer = version > max(supported)
        raise ConfigError(
            f"{where or kind} uses dbt {kind} schema v{version} (written by dbt {dbt_version}); "
            f"dwml reads {known}.",
            hint=(f"upgrade dwml, or regenerate the artifacts with dbt-core 1.11 ({WRITTEN_BY[kind + '.json']})."
                  if newer else f"regenerate the artifacts with a newer dbt-core (1.6 or later): "
                  f"{WRITTEN_BY[kind + '.json']}."),
        )
    return version


def is_stale(path: Path, newest_source: Path | None) -> bool:
    return newest_source is not None and newest_source.stat().st_mtime > path.stat().st_mtime


def read_catalog_json(path: Path, newest_source: Path | None, have_warehouse: bool,
                       notes: list[str]) -> tuple[dict | None, bool]:
    """(catalog.json, is it current). A damaged or unreadable one is no error: the warehouse
    knows the columns as well, and the note says how to rewrite it."""
    if not path.is_file():
        return None, False
    try:
        document = read_artifact(path, "catalog")
        check_version(document, "catalog", SUPPORTED_CATALOG_VERSIONS, str(path))
    except DwmlError as exc:
        notes.append(f"{path} could not be read ({exc.message.splitlines()[0][:200]}): columns come from the "
                     "warehouse; run `dbt docs generate` to rewrite it.")
        return None, False
    current = not is_stale(path, newest_source)
    if not current:
        notes.append(f"{path} is older than {newest_source}: columns come from the warehouse"
                     + ("." if have_warehouse else " (none could be opened), so they may be out of date."))
    return document, current
