"""The gate tools: check_data_quality (`dwml check MODEL`) and check_governance
(`dwml governance MODEL`). Both write their decision to dwml.audit_log, so neither is read-only.

A failing gate is a result with `passed: false` (the CLI then exits 2), not an exception.
"""

from __future__ import annotations

from typing import Annotated

from dwml_py.tools.registry import TOOLS, Param


@TOOLS.tool("check_data_quality", cli=("check",), read_only=False, verdict="passed")
def check_data_quality(
    project,
    model: Annotated[str, Param("the dbt model to check (e.g. a feature model)", positional=True)],
    override: Annotated[bool, Param("let a failing gate pass; needs --reason, and is recorded in the audit log")] = False,
    reason: Annotated[str | None, Param("why the override is justified (required with --override)", text=True)] = None,
    rerun_tests: Annotated[bool, Param("run `dbt test` even when target/run_results.json is current")] = False,
) -> dict:
    """The quality gate: dbt test results of a model and everything upstream, plus profile thresholds.

    Reuses target/run_results.json when it is current, otherwise runs `dbt test --select +MODEL`;
    then checks one warehouse-side profile against the thresholds in meta.dwml.quality / vars
    (max_null_rate, min_rows, max_staleness_hours, no_duplicate_keys). Every failing check has a
    hint. The decision (pass, fail, overridden) is appended to dwml.audit_log.
    """
    from dwml_py.quality import quality_gate

    return quality_gate(project, model, override=override, reason=reason, rerun_tests=rerun_tests)


@TOOLS.tool("check_governance", cli=("governance",), read_only=False, verdict="passed")
def check_governance(
    project,
    model: Annotated[str, Param("the dbt model whose columns to check", positional=True)],
    columns: Annotated[list[str] | None, Param("only these columns (repeatable); default: the model's columns "
                                               "minus entity and timestamp", flag="--column")] = None,
    sample: Annotated[bool, Param("sample string values in the warehouse to find PII by its values")] = True,
) -> dict:
    """The governance gate: finds PII (meta, lineage, names, sampled values), classifications and policy violations.

    Policies come from `vars: dwml: governance:` (PII and restricted columns may not be features
    unless meta.dwml.governance.exceptions grants one with a reason; a model needs an owner and a
    description). Every violation names its rule. The decision is appended to dwml.audit_log.
    """
    from dwml_py.governance import governance_gate

    return governance_gate(project, model, columns=columns, sample=sample)
