"""Every registered tool, fed generated hostile strings and numbers through the registry (issue 18).

For each tool, hypothesis draws arguments of the parameters' types and of wrong ones: injection
and path-traversal strings, control characters, empty and very long texts, huge, negative and
non-finite numbers, next to a few real names of the demo so that calls also get deep. Each call
runs as a person, as an agent, or as an agent in a read-only session, and must keep three
properties:

1. it raises nothing but dwml's own errors (a DwmlError says what was wrong; anything else is a
   bug that reaches users as "unexpected ...");
2. a read-only call changes nothing: dwml's tables and the files of the project, dbt's target and
   logs and the artifacts are as they were, whatever it returned;
3. a call refused for bad input (InputError) changed nothing either.

Bounded: a dozen examples per tool on a private copy of the small demo, two to three minutes in
all (DWML_PROPERTY_EXAMPLES raises the number).
"""

from __future__ import annotations

import hashlib
import os
import typing
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A dozen per tool keeps the suite quick; DWML_PROPERTY_EXAMPLES=200 digs deeper before a release.
EXAMPLES_PER_TOOL = int(os.environ.get("DWML_PROPERTY_EXAMPLES", "12"))

# Hypothesis starts from its simplest examples: the first value of a sampled list and the first
# strategy of one_of. So each list starts with the nastiest values, and every parameter is drawn
# (an optional one may be left out later), so that even a dozen examples reach the edges.
EDGE_TEXTS = ["y" * 5000, "\x00", "", "'; drop table dwml.runs; --", "../../etc/passwd", "/etc/passwd",
              'a"; drop table main.customer_features; --', "a\nb", "\t", " ", "'", '"', "';--", "../", "~/x.yml",
              "%s%n", "{{ env_var('HOME') }}", "${HOME}", "NaN", "-1", "9" * 40, "x" * 300, "dbt:inv:churn_scores",
              "rest-1", "☃" * 20, "\u202e", "null", "2024-01-01", "9999-12-31", "0001-01-01", "=", "a=",
              "roc_auc=nan", "max_depth=3", "models/x.yml", "target/x.html",
              # real names of the demo, so that some calls get deep
              "churn", "production", "customer_features", "main.customer_features", "dwml.runs", "holdout",
              "customer_labels.churned_30d", "customer_features.tenure_days"]
EDGE_INTS = [10**20, 2**63, -(10**30), 2**31, -1, 0, 2**53 + 1, 1]
EDGE_FLOATS = [float("nan"), float("inf"), 1e308, -1e-308, -0.0, 0.5]
HOSTILE_TEXT = st.one_of(st.sampled_from(EDGE_TEXTS), st.text(max_size=24))
HOSTILE_INT = st.one_of(st.sampled_from(EDGE_INTS), st.integers(min_value=-10, max_value=10), st.integers())
HOSTILE_FLOAT = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(), HOSTILE_INT)
WRONG_TYPE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HOSTILE_TEXT,
                       st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                            max_size=2))
LEFT_OUT = object()


def value_of(param) -> st.SearchStrategy:
    """Values of the parameter's type (mostly) and of other types (sometimes)."""
    from dwml_py.tools.registry import _unwrap_optional

    inner, _ = _unwrap_optional(param.annotation)
    origin = typing.get_origin(inner)
    if inner is bool:
        typed = st.booleans()
    elif inner is int:
        typed = HOSTILE_INT
    elif inner is float:
        typed = HOSTILE_FLOAT
    elif origin is typing.Literal:
        typed = st.one_of(st.sampled_from(typing.get_args(inner)), HOSTILE_TEXT)
    elif origin in (list, tuple):
        typed = st.lists(HOSTILE_TEXT, max_size=4)
    else:
        typed = HOSTILE_TEXT
    return st.one_of(typed, WRONG_TYPE)


# Arguments that only make the tool run dbt (seconds per call, and no input to handle): drawn in
# read-only calls, where they must be refused, and left at their defaults otherwise.
RUNS_DBT = {"refresh", "build", "rerun_tests"}


@st.composite
def calls(draw, spec):
    """(context, arguments): required parameters always, optional ones sometimes. People-only flags
    (writing outside the project on purpose) are a person's explicit choice: left at their defaults."""
    from dwml_py.call_context import CallContext

    context = draw(st.sampled_from([CallContext(), CallContext(agent=True), CallContext(read_only=True, agent=True)]))
    params = [p for p in spec.params if not p.people_only and (context.read_only or p.name not in RUNS_DBT)]
    drawn = draw(st.fixed_dictionaries({p.name: value_of(p) if p.required else st.one_of(value_of(p),
                                                                                         st.just(LEFT_OUT))
                                        for p in params}))
    return context, {name: value for name, value in drawn.items() if value is not LEFT_OUT}


def tables_fingerprint(path: Path) -> dict[str, str]:
    """Every table of schema dwml, as a digest of its rows in order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.sql("select table_name from information_schema.tables "
                                        "where table_schema = 'dwml' and table_type = 'BASE TABLE'").fetchall()]
        return {t: con.execute(f'select count(*) || \':\' || coalesce(md5(string_agg(r::varchar, chr(10) '
                               f'order by r::varchar)), \'\') from dwml."{t}" r').fetchone()[0] for t in tables}
    finally:
        con.close()


def files_fingerprint(*folders: Path) -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest()
            for folder in folders for f in sorted(Path(folder).rglob("*")) if f.is_file()}


def _tool_names() -> list[str]:
    from dwml_py.tools.registry import load_tools

    return load_tools().names()


@pytest.mark.parametrize("name", _tool_names())
def test_hostile_arguments_through_the_registry(name, demo, project_copy):
    from dwml_py.errors import DwmlError, InputError
    from dwml_py.tools.registry import load_tools

    spec = load_tools()[name]
    warehouse = demo["DWML_DUCKDB_PATH"]
    folders = [project_copy.project_dir, demo["DBT_TARGET_PATH"], demo["DBT_LOG_PATH"], demo["DWML_ARTIFACT_DIR"]]

    @settings(max_examples=EXAMPLES_PER_TOOL, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(drawn=calls(spec))
    def call(drawn):
        context, arguments = drawn
        tables, files = tables_fingerprint(warehouse), files_fingerprint(*folders)
        refused = None
        try:
            spec.invoke(project_copy, arguments, context=context)
        except DwmlError as exc:
            refused = exc
            assert exc.message.strip(), f"{name}: an error without a message"
        except Exception as exc:  # noqa: BLE001 - the property: nothing but dwml's own errors
            raise AssertionError(f"{name}({arguments!r}) as {context}: unexpected {type(exc).__name__}: "
                                 f"{exc}") from exc
        if context.read_only or isinstance(refused, InputError):
            why = "read-only call" if context.read_only else f"refused call ({refused.message[:120]})"
            assert tables_fingerprint(warehouse) == tables, f"{name}({arguments!r}): a {why} changed dwml's tables"
            assert files_fingerprint(*folders) == files, f"{name}({arguments!r}): a {why} changed files"

    call()
