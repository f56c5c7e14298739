"""Deployment and batch scoring tools: `dwml deploy NAME --version N`, `dwml predict NAME`."""

from __future__ import annotations

from typing import Annotated

from dwml_py.progress import SILENT
from dwml_py.defaults import SCAFFOLD_DIRECTORY as DEFAULT_SCAFFOLD_DIR
from dwml_py.tools.registry import PATH_MAX, TOOLS, VERSION, Param


@TOOLS.tool("deploy_model", cli=("deploy",), read_only=False, verdict="passed")
def deploy_model(
    project,
    name: Annotated[str, Param("the registered model (e.g. churn)", positional=True)],
    version: Annotated[int, Param("the version to deploy (an earlier one is a rollback)", **VERSION)],
    alias: Annotated[str, Param("the alias to move (production, staging, ...)")] = "production",
    reason: Annotated[str | None, Param("why; recorded with the alias move ('rollback' by default when the "
                                        "version is older than the current one)", text=True)] = None,
    scaffold: Annotated[bool, Param("also write a dbt model (+ yml with tests) that scores the feature model in "
                                    "the warehouse with dwml_predict on `dbt run`")] = False,
    scaffold_dir: Annotated[str, Param("folder of the scaffolded model inside the project",
                                       max_length=PATH_MAX)] = DEFAULT_SCAFFOLD_DIR,
    scaffold_name: Annotated[str | None, Param("name of the scaffolded dbt model (default: NAME_scores); refused when "
                                               "a model of that name exists in the project or its packages",
                                               max_length=PATH_MAX)] = None,
    force: Annotated[bool, Param("let --scaffold overwrite files even when they were edited by hand")] = False,
) -> dict:
    """Deploy a model version: re-run governance on its features, check its monitoring baseline, compile it to SQL for dbt, move the alias (kept in history) and audit it.

    A governance refusal moves nothing and exits 2. Rolling back is deploying an earlier version.
    A version that cannot be scored in SQL is still deployed; `sql_scoring` says why.
    """
    from dwml_py.deployment import deploy

    return deploy(project, name, version, alias=alias, reason=reason,
                  scaffold_dir=scaffold_dir if scaffold else None, force=force, scaffold_name=scaffold_name)


@TOOLS.tool("predict", cli=("predict",), read_only=False)
def predict(
    project,
    name: Annotated[str, Param("the registered model (e.g. churn)", positional=True)],
    version: Annotated[int | None, Param("score with this version (instead of the alias)", **VERSION)] = None,
    alias: Annotated[str, Param("score with the version this alias points at")] = "production",
    relation: Annotated[str | None, Param("table to score: schema.table or a dbt model name (default: the "
                                          "version's feature model)")] = None,
    batch_id: Annotated[str | None, Param("batch id; re-running a batch replaces its rows (default: "
                                          "MODEL-vVERSION-RELATION)")] = None,
    batch_size: Annotated[int, Param("rows per Arrow batch: bounds memory whatever the table's size",
                                     minimum=1, maximum=10_000_000)] = 50_000,
    progress=SILENT,
) -> dict:
    """Batch scoring: stream a relation in Arrow batches, score it with a model version and write dwml.predictions.

    Idempotent: re-running a batch replaces its rows in one transaction, never duplicates them.
    """
    from dwml_py.batch_scoring import predict as run_predict

    return run_predict(project, name, version=version, alias=alias, relation=relation, batch_id=batch_id,
                       batch_size=batch_size, progress=progress)
