"""Tools for people who read rather than query: `dwml report NAME` (the HTML model card) and
`dwml docs exposures` (deployed models as dbt exposures, so `dbt docs` shows the ML lineage)."""

from __future__ import annotations

from typing import Annotated

from dwml_py.progress import SILENT
from dwml_py.tools.registry import PATH_MAX, TOOLS, VERSION, Param

_OUTSIDE = ("write --output outside the project, its target and artifact folders (command line and Python "
            "only; never offered to agents)")


@TOOLS.tool("create_report", cli=("report",), read_only=False)
def create_report(
    project,
    name: Annotated[str, Param("the registered model (e.g. churn)", positional=True)],
    version: Annotated[int | None, Param("the version to report on (default: production's, else the latest)",
                                         **VERSION)] = None,
    alias: Annotated[str | None, Param("report on the version this alias points at, e.g. staging")] = None,
    output: Annotated[str | None, Param("file (or folder) to write inside the project (default: "
                                        "TARGET/dwml_reports/NAME-vN.html in the dbt target folder)",
                                        max_length=PATH_MAX)] = None,
    rebuild_holdout: Annotated[bool, Param("rebuild the version's holdout from the warehouse for the ROC, PR, "
                                           "calibration or residual plots")] = True,
    force: Annotated[bool, Param("overwrite the file even when dwml did not write it or it was edited")] = False,
    allow_outside_project: Annotated[bool, Param(_OUTSIDE, people_only=True)] = False,
    progress=SILENT,
) -> dict:
    """Write a model version's card: one self-contained HTML file with its data, gates, metrics and plots, importance, drift and performance over time, versions and alias history.

    Styles and plots are embedded (no scripts, no external URLs), so the file opens offline. The
    curves come from the version's artifact scored on its holdout rebuilt from the warehouse; the
    page says whether the data and the recomputed metrics still match the training run.
    """
    from dwml_py.report import create_report as run_report

    return run_report(project, name, version=version, alias=alias, output=output, rebuild=rebuild_holdout,
                      progress=progress, force=force, allow_outside=allow_outside_project)


@TOOLS.tool("write_exposures", cli=("docs", "exposures"), read_only=False)
def write_exposures(
    project,
    output: Annotated[str | None, Param("yml file to write inside the project (default: "
                                        "MODELS/exposures/dwml_exposures.yml in the project's first model path)",
                                        max_length=PATH_MAX)] = None,
    force: Annotated[bool, Param("overwrite the file even when dwml did not write it or it was edited")] = False,
    allow_outside_project: Annotated[bool, Param(_OUTSIDE, people_only=True)] = False,
) -> dict:
    """Write every deployed model as a dbt exposure (type ml) depending on its feature and label models and dwml's tables, so `dbt docs generate` shows raw tables -> features -> model -> predictions.

    The file carries a checksum header: one edited by hand is not overwritten without --force.
    References are checked against the manifest, so the file never breaks `dbt parse`.
    """
    from dwml_py.exposures import write_exposures as run_write

    return run_write(project, output=output, force=force, allow_outside=allow_outside_project)
