"""The overview tool: `dwml status [NAME]` (get_ml_status)."""

from __future__ import annotations

from typing import Annotated

from dwml_py.tools.registry import TOOLS, Param


@TOOLS.tool("get_ml_status", cli=("status",))
def get_ml_status(
    project,
    name: Annotated[str | None, Param("only this model (default: every model)", positional=True)] = None,
) -> dict:
    """One overview of every model: versions, aliases, last training and its gates, last drift check, last predictions and performance.

    A few queries over dwml's tables in total, whatever the number of models; it only reads.
    Each model lists under `attention` what needs a look: a failed or stale training run, dataset
    or score drift in the last check, performance degraded in the latest evaluated window.
    """
    from dwml_py.ml_status import ml_status
    from dwml_py.warehouse import connect

    with connect(project) as warehouse:
        return ml_status(warehouse, model=name)
