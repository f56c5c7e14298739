"""Monitoring tools: `dwml drift NAME [--version N | --alias A] [--relation R] [--after D] [--before D]`."""

from __future__ import annotations

from typing import Annotated

from dwml_py.tools.registry import TOOLS, VERSION, Param


@TOOLS.tool("detect_model_drift", cli=("drift",), read_only=False, verdict="alert")
def detect_model_drift(
    project,
    name: Annotated[str, Param("the registered model (e.g. churn)", positional=True)],
    version: Annotated[int | None, Param("check this version's reference (instead of the alias)", **VERSION)] = None,
    alias: Annotated[str, Param("check the version this alias points at")] = "production",
    relation: Annotated[str | None, Param("table to compare: schema.table or a dbt model name (default: the "
                                          "version's feature model)")] = None,
    after: Annotated[str | None, Param("only rows whose timestamp is >= this date (ISO, e.g. 2025-06-01)")] = None,
    before: Annotated[str | None, Param("only rows whose timestamp is < this date (ISO)")] = None,
) -> dict:
    """Detect feature and score drift against a model version's training reference, computed in the warehouse.

    PSI, KS and normalised Wasserstein for numbers; PSI, Jensen-Shannon distance and unseen share for
    categories; missing-rate change for every feature; PSI and KS of the scores. Rows go to
    dwml.drift_metrics; dataset-level drift (or score drift) raises an alert and exits 2.
    """
    from dwml_py.drift import detect_drift

    return detect_drift(project, name, version=version, alias=alias, relation=relation, where_after=after,
                        where_before=before)
