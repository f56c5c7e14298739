"""Feature tools: suggest features for a target, and write a feature pipeline (dbt model + yml).

Each returns a JSON-serialisable dict (the CLI renders it, the agent server sends it as is).
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from dwml_py.defaults import FEATURE_PIPELINE_DIRECTORY as DEFAULT_DIRECTORY
from dwml_py.defaults import SUGGESTION_SAMPLE_SIZE as DEFAULT_SAMPLE_SIZE
from dwml_py.tools.registry import PATH_MAX, SEED, TOOLS, Param


@TOOLS.tool("suggest_features", cli=("features", "suggest"))
def suggest_features(
    project,
    # Not `target`: every command already has --target (the dbt target), see _COMMON in cli.py.
    target_column: Annotated[str, Param("the column to predict, MODEL.COLUMN (e.g. customer_labels.churned_30d)")],
    entity: Annotated[str | None, Param("entity key to join on (default: from meta.dwml of the target or of "
                                        "the feature model that names it as label)")] = None,
    timestamp: Annotated[str | None, Param("snapshot/time column of the target's model (default: from meta.dwml)")] = None,
    sample_size: Annotated[int, Param("rows of the target sampled in the warehouse to score candidates",
                                      minimum=50, maximum=10_000_000)] = DEFAULT_SAMPLE_SIZE,
    seed: Annotated[int, Param("seed of the deterministic sample", **SEED)] = 0,
    limit: Annotated[int, Param("at most this many ranked candidates (0: all)", minimum=0, maximum=10_000)] = 50,
    refresh: Annotated[bool, Param("run `dbt parse` first when target/manifest.json is missing or stale", writes=True)] = False,
) -> dict:
    """Rank candidate feature columns for a target from every model and source joinable on the entity key.

    Relevance (out-of-fold univariate AUC or correlation, mutual information) is measured on a
    deterministic sample drawn and joined inside the warehouse; each column also gets null rate,
    distinct count, tests and freshness. Columns flagged LEAKAGE, ID_LIKE, PII, CONSTANT,
    REDUNDANT, DATETIME or UNSUPPORTED_TYPE are listed under `excluded` with the reasons.
    """
    from dwml_py.feature_suggestions import suggest

    with _session(project, refresh) as (catalog, warehouse):
        return suggest(catalog, warehouse, target_column, entity, timestamp, sample_size=sample_size, seed=seed, limit=limit)


@TOOLS.tool("create_feature_pipeline", cli=("features", "pipeline"), read_only=False, verdict="passed")
def create_feature_pipeline(
    project,
    name: Annotated[str, Param("name of the dbt model to write", positional=True)],
    target_column: Annotated[str, Param("the column to predict, MODEL.COLUMN; the model's grain is the target's")],
    columns: Annotated[list[str] | None, Param("columns to include, as model.column (source_name.table.column "
                                               "for sources)")] = None,
    from_suggestion: Annotated[bool, Param("include the top unflagged columns of suggest_features")] = False,
    top: Annotated[int, Param("how many suggested columns --from-suggestion takes", minimum=1, maximum=1_000)] = 10,
    directory: Annotated[str, Param("folder of the model inside the project", max_length=PATH_MAX)] = DEFAULT_DIRECTORY,
    entity: Annotated[str | None, Param("entity key (default: from meta.dwml)")] = None,
    timestamp: Annotated[str | None, Param("snapshot/time column (default: from meta.dwml)")] = None,
    force: Annotated[bool, Param("overwrite the files even when they were edited by hand")] = False,
    build: Annotated[bool, Param("run `dbt build --select NAME` afterwards")] = False,
    refresh: Annotated[bool, Param("run `dbt parse` first when target/manifest.json is missing or stale")] = False,
) -> dict:
    """Write a dbt feature model (SQL + yml with tests and the meta.dwml spec) joining chosen columns point-in-time onto the target's grain.

    Never overwrites a file edited by hand (its checksum header no longer matches) unless --force.
    """
    from dwml_py.feature_pipeline import create_pipeline, model_folder, write_files

    if not force:
        # Refuse before anything else: after a hand edit the manifest is stale too, and the
        # refusal is the message that matters.
        folder = model_folder(project, directory)
        write_files({folder / f"{name}.sql": "", folder / f"{name}.yml": ""}, force=False, dry_run=True)
    with _session(project, refresh) as (catalog, warehouse):
        result = create_pipeline(project, catalog, warehouse, name, target_column, columns=columns,
                                 from_suggestion=from_suggestion, top=top, directory=directory, entity=entity,
                                 timestamp=timestamp, force=force)
    if build:
        from dwml_py.dbt_runner import run_dbt

        run = run_dbt(project, ["build", "--select", name])
        result["build"] = run.to_dict()
        # a failing build of the new model is a refused gate: exit code 2 from the CLI
        result["passed"] = run.success
    return result


@contextlib.contextmanager
def _session(project, refresh: bool):
    """The catalog (columns from catalog.json or the warehouse) and a read-only warehouse. The
    models lineage needs are compiled later, once the arguments are checked, and only those
    (Catalog.ensure_compiled); the dbt runner closes the connection while dbt runs."""
    from dwml_py.catalog import Catalog

    from dwml_py.warehouse import connect

    with connect(project, read_only=True) as warehouse:
        yield Catalog.load(project, refresh=refresh, warehouse=warehouse), warehouse
