"""The quality gate: dbt test results of a model and everything upstream, plus profile thresholds.

`quality_gate(project, "customer_features")` answers one question before training: may this
data be trusted? Two kinds of evidence:

1. **dbt tests** on the model and its ancestors (the tests whose every parent is the model or
   one of its ancestors, as dbt's `--indirect-selection cautious` picks them). A test's result in
   target/run_results.json (or in the last gate's own `dbt test`) is reused when it is current
   (see `current_results`); `dbt test` runs in-process for the others only: `--select` of their
   names, or `--select +MODEL` when none is current. The result says which source was used and why.
2. **Profile thresholds**, checked against one warehouse-side profile of the model
   (dwml_py.profiling), configured in the model's yml or the project:

   ```yaml
   # dbt_project.yml: the project's defaults        # the model's yml: wins over the project
   vars:                                            config:
     dwml:                                            meta:
       quality:                                         dwml:
         max_null_rate: 0.2                               quality:
         min_rows: 1000                                     max_null_rate: {default: 0.2, city: 0.6}
         max_staleness_hours: 48                            no_duplicate_keys: true
   ```

   | key | meaning | default |
   |---|---|---|
   | `max_null_rate` | largest share of nulls allowed in a column: a number for every column, or a mapping of column -> share with `default` (or `"*"`) for the rest | 0.5: a column more than half empty usually means a broken join or load; raise it per column where sparsity is by design |
   | `min_rows` | fewest rows the table may have | 1: an empty table fails |
   | `max_staleness_hours` | most hours since the latest value of the `meta.dwml.timestamp` column | not checked: training on a historical window is normal |
   | `no_duplicate_keys` | no two rows share `meta.dwml.entity` + `meta.dwml.timestamp` | true (checked when the entity is known) |

   A mapping for `max_null_rate` merges column by column: the model's entries win over the
   project's, the project's over the default.

An explicit override (`override=True` with a `reason`) lets a failing gate pass; it is recorded
like every decision in dwml.audit_log (action `gate.quality`). Known limit: a model rebuilt
without writing run_results.json (`--no-write-json`, another target path), or source data
reloaded outside dbt, cannot be told apart from the tested state; `rerun_tests=True` forces
`dbt test`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from dwml_py.errors import ConfigError, DwmlError, InputError, NotFoundError, did_you_mean
from dwml_py.settings import meta_section, project_var

DEFAULT_MAX_NULL_RATE = 0.5
DEFAULT_MIN_ROWS = 1
DEFAULT_MAX_STALENESS_HOURS: float | None = None
DEFAULT_NO_DUPLICATE_KEYS = True
QUALITY_KEYS = ("max_null_rate", "min_rows", "max_staleness_hours", "no_duplicate_keys")
AUDIT_ACTION = "gate.quality"

FAILING_TEST_STATUSES = {"fail", "error", "runtime error"}
TEST_RESULT_STATUSES = {"pass", "warn", *FAILING_TEST_STATUSES}  # a test that ran and gave a verdict
_TEST_HINT = ("fix the data or the model, then rebuild (`dbt build --select +{model}`); "
              "`dbt test --select +{model} --store-failures` keeps the failing rows to look at.")


# -- thresholds -------------------------------------------------------------------------------

@dataclass
class Thresholds:
    """The thresholds in force for one model, each with where it came from (default/vars/meta)."""

    max_null_rate: float | None = DEFAULT_MAX_NULL_RATE
    column_max_null_rate: dict[str, float] = field(default_factory=dict)
    min_rows: int | None = DEFAULT_MIN_ROWS
    max_staleness_hours: float | None = DEFAULT_MAX_STALENESS_HOURS
    no_duplicate_keys: bool = DEFAULT_NO_DUPLICATE_KEYS
    sources: dict[str, str] = field(default_factory=dict)  # key (or max_null_rate.COLUMN) -> where from

    def null_rate_limit(self, column: str) -> tuple[float | None, str]:
        """The max null rate of a column and where it came from."""
        lowered = {k.lower(): k for k in self.column_max_null_rate}
        key = lowered.get(column.lower())
        if key is not None:
            return self.column_max_null_rate[key], self.sources.get(f"max_null_rate.{key}", "default")
        return self.max_null_rate, self.sources.get("max_null_rate", "default")

    def to_dict(self) -> dict:
        return {"max_null_rate": self.max_null_rate, "column_max_null_rate": dict(self.column_max_null_rate),
                "min_rows": self.min_rows, "max_staleness_hours": self.max_staleness_hours,
                "no_duplicate_keys": self.no_duplicate_keys, "sources": dict(self.sources)}


def project_quality_vars(project_config: dict) -> dict:
    """`vars: dwml: quality:` of dbt_project.yml ({} when unset)."""
    return _mapping(project_var(project_config, "quality"), "vars: dwml: quality: in dbt_project.yml")


def model_quality_meta(meta: dict) -> dict:
    """`meta.dwml.quality` of a model ({} when unset)."""
    return _mapping(meta_section(meta, "quality"), "meta.dwml.quality of the model")


def resolve_thresholds(project_config: dict, model_meta: dict) -> Thresholds:
    """Defaults, overridden by project vars, overridden by the model's meta.

    >>> t = resolve_thresholds({"vars": {"dwml": {"quality": {"min_rows": 10, "max_null_rate": 0.2}}}},
    ...                        {"dwml": {"quality": {"max_null_rate": {"city": 0.9}}}})
    >>> t.min_rows, t.sources["min_rows"], t.null_rate_limit("city"), t.null_rate_limit("age")
    (10, 'vars', (0.9, 'meta'), (0.2, 'vars'))
    """
    thresholds = Thresholds(sources={k: "default" for k in QUALITY_KEYS})
    for origin, where, config in (("vars", "vars: dwml: quality: in dbt_project.yml", project_quality_vars(project_config)),
                                  ("meta", "meta.dwml.quality of the model", model_quality_meta(model_meta))):
        unknown = sorted(set(config) - set(QUALITY_KEYS))
        if unknown:
            raise ConfigError(f"Unknown quality setting {unknown[0]!r} in {where}.",
                              hint=f"{did_you_mean(unknown[0], QUALITY_KEYS)} (known: {', '.join(QUALITY_KEYS)})")
        if "max_null_rate" in config:
            _apply_null_rate(thresholds, config["max_null_rate"], origin, where)
        if "min_rows" in config:
            thresholds.min_rows = _number(config["min_rows"], "min_rows", where, integer=True)
            thresholds.sources["min_rows"] = origin
        if "max_staleness_hours" in config:
            thresholds.max_staleness_hours = _number(config["max_staleness_hours"], "max_staleness_hours", where)
            thresholds.sources["max_staleness_hours"] = origin
        if "no_duplicate_keys" in config:
            value = config["no_duplicate_keys"]
            if not isinstance(value, bool):
                raise ConfigError(f"no_duplicate_keys in {where} must be true or false, got {value!r}.",
                                  hint="write `no_duplicate_keys: true` (or false to skip the check).")
            thresholds.no_duplicate_keys = value
            thresholds.sources["no_duplicate_keys"] = origin
    return thresholds


def _apply_null_rate(thresholds: Thresholds, value, origin: str, where: str) -> None:
    if isinstance(value, dict):
        for column, rate in value.items():
            rate = _rate(rate, f"max_null_rate.{column}", where)
            if str(column) in ("default", "*"):
                thresholds.max_null_rate = rate
                thresholds.sources["max_null_rate"] = origin
            else:
                thresholds.column_max_null_rate[str(column)] = rate
                thresholds.sources[f"max_null_rate.{column}"] = origin
    else:
        thresholds.max_null_rate = _rate(value, "max_null_rate", where)
        thresholds.sources["max_null_rate"] = origin


def _rate(value, key: str, where: str) -> float | None:
    if value is None:
        return None
    rate = _number(value, key, where)
    if not 0 <= rate <= 1:
        raise ConfigError(f"{key} in {where} must be a share between 0 and 1, got {value!r}.",
                          hint="e.g. 0.2 allows up to 20% nulls; null turns the check off.")
    return rate


def _number(value, key: str, where: str, integer: bool = False):
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < 0:
        kind = "a whole number >= 0" if integer else "a number >= 0"
        raise ConfigError(f"{key} in {where} must be {kind}, got {value!r}.",
                          hint="fix the value in the yml (null turns the check off).")
    return value


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of settings, got {value!r}.",
                          hint=f"e.g. quality: {{max_null_rate: 0.2, min_rows: 100}} (known: {', '.join(QUALITY_KEYS)})")
    return value


# -- profile checks ---------------------------------------------------------------------------

def _check(name: str, passed: bool, detail: str, hint: str | None = None, **extra) -> dict:
    return {"check": name, "passed": passed, "detail": detail, "hint": None if passed else hint, **extra}


def profile_checks(profile, thresholds: Thresholds, entity: list[str], timestamp: str | None,
                   model: str) -> list[dict]:
    """The threshold checks of one TableProfile; every failing one names the column and a fix."""
    checks: list[dict] = []
    where = {"default": "dwml's default", "vars": "vars dwml.quality in dbt_project.yml",
             "meta": "meta.dwml.quality of the model"}
    hint_config = (f"or, if the data is right, raise the threshold in meta.dwml.quality of {model} "
                   "(or vars: dwml: quality: in dbt_project.yml)")

    if thresholds.min_rows is not None:
        ok = profile.row_count >= thresholds.min_rows
        checks.append(_check("min_rows", ok, f"{profile.row_count:,} rows; at least {thresholds.min_rows:,} required "
                             f"({where[thresholds.sources.get('min_rows', 'default')]}).",
                             f"load or rebuild the data (`dbt build --select +{model}`), {hint_config}.",
                             value=profile.row_count, threshold=thresholds.min_rows))

    failing = []
    checked = 0
    for col in profile.columns:
        limit, origin = thresholds.null_rate_limit(col.name)
        if limit is None or col.null_rate is None:
            continue
        checked += 1
        if col.null_rate > limit:
            failing.append(_check(
                "max_null_rate", False,
                f"{col.name} is {col.null_rate:.1%} null ({col.null_count:,} of {col.row_count:,} rows); "
                f"at most {limit:.1%} allowed ({where[origin]}).",
                f"find where {col.name} loses values upstream (a join or a load), {hint_config} "
                f"as max_null_rate: {{{col.name}: ...}}.",
                column=col.name, value=col.null_rate, threshold=limit))
    checks.extend(failing or [_check("max_null_rate", True, f"{checked} column(s) within their max null rate.")])

    if thresholds.max_staleness_hours is not None:
        checks.append(_staleness_check(profile, thresholds, timestamp, model, where, hint_config))

    if thresholds.no_duplicate_keys:
        key = [*entity, *([timestamp] if timestamp else [])]
        if not entity:
            checks.append(_check("no_duplicate_keys", True, "not checked: the model's meta.dwml.entity is not set.",
                                 skipped=True))
        else:
            dups = profile.duplicate_keys or 0
            checks.append(_check(
                "no_duplicate_keys", dups == 0,
                f"{dups:,} value(s) of ({', '.join(key)}) occur more than once"
                + (f" ({profile.duplicate_rows:,} extra rows)." if dups else "."),
                f"make ({', '.join(key)}) unique in {model} (deduplicate upstream; a `unique` test on the key "
                "catches it in dbt), or set no_duplicate_keys: false in meta.dwml.quality.",
                key=key, value=dups, threshold=0))
    return checks


def _staleness_check(profile, thresholds, timestamp, model, where, hint_config) -> dict:
    limit = thresholds.max_staleness_hours
    origin = where[thresholds.sources.get("max_staleness_hours", "default")]
    if not timestamp:
        return _check("max_staleness_hours", False, f"max_staleness_hours is set ({origin}) but {model} names no "
                      "timestamp column.", f"set meta.dwml.timestamp of {model} to its timestamp column, or remove "
                      "max_staleness_hours.")
    try:
        col = profile.column(timestamp)
    except NotFoundError:
        return _check("max_staleness_hours", False, f"the timestamp column {timestamp!r} (meta.dwml.timestamp) is not "
                      f"a column of {profile.relation}.", f"fix meta.dwml.timestamp of {model}.")
    if col.freshness_hours is None:
        detail = (f"{timestamp} has no values." if col.row_count and col.null_count == col.row_count
                  else f"{timestamp} is {col.data_type}, not a date or timestamp, so its age cannot be measured."
                  if col.kind != "temporal" else f"{timestamp} has no values.")
        return _check("max_staleness_hours", False, detail,
                      f"make {timestamp} a date/timestamp column with values, or remove max_staleness_hours.",
                      column=timestamp)
    hours = col.freshness_hours
    return _check("max_staleness_hours", hours <= limit,
                  f"the latest {timestamp} is {hours:,.1f} hours old; at most {limit:,} allowed ({origin}).",
                  f"refresh the data (`dbt build --select +{model}` after the sources load), {hint_config}.",
                  column=timestamp, value=round(hours, 3), threshold=limit)


# -- dbt tests --------------------------------------------------------------------------------

def ancestors(manifest: dict, unique_id: str) -> set[str]:
    """The node and every node it depends on, transitively (models, seeds, snapshots, sources)."""
    nodes = {**(manifest.get("nodes") or {}), **(manifest.get("sources") or {})}
    seen, stack = {unique_id}, [unique_id]
    while stack:
        for parent in ((nodes.get(stack.pop()) or {}).get("depends_on") or {}).get("nodes") or []:
            if parent not in seen and parent in nodes:
                seen.add(parent)
                stack.append(parent)
    return seen


def expected_tests(manifest: dict, closure: set[str]) -> dict[str, dict]:
    """The tests about the model and its ancestors: every parent of the test is in `closure`
    (dbt's cautious indirect selection; a relationships test reaching outside is not ours)."""
    out = {}
    for uid, node in (manifest.get("nodes") or {}).items():
        if node.get("resource_type") != "test":
            continue
        if (node.get("config") or {}).get("enabled") is False:
            continue
        parents = [p for p in (node.get("depends_on") or {}).get("nodes") or [] if not p.startswith("macro.")]
        if parents and all(p in closure for p in parents):
            out[uid] = node
    return out


@dataclass
class DbtTestsOutcome:
    source: str  # "run_results", "dbt test", or "run_results + dbt test" (only the tests without a current result ran)
    passed: bool
    tests: int
    failed: list[dict]
    warned: list[dict]
    skipped: list[dict]
    why: str  # why this source was used
    invocation_id: str | None = None
    tested_at: str | None = None
    reused: int | None = None  # tests judged by a current result, when dbt ran the others
    ran: int | None = None  # tests dbt ran

    def to_dict(self) -> dict:
        return {"source": self.source, "passed": self.passed, "tests": self.tests, "failed": self.failed,
                "warned": self.warned, "skipped": self.skipped, "why": self.why,
                "invocation_id": self.invocation_id, "tested_at": self.tested_at,
                "reused": self.reused, "ran": self.ran}


def _test_entry(uid: str, node: dict, status: str, message, failures, manifest_nodes: dict) -> dict:
    metadata = node.get("test_metadata") or {}
    attached = node.get("attached_node") or next(iter((node.get("depends_on") or {}).get("nodes") or []), None)
    model = (manifest_nodes.get(attached) or {}).get("name") if attached else None
    return {"unique_id": uid, "name": node.get("name") or uid, "test": metadata.get("name") or "singular",
            "model": model, "column": node.get("column_name") or (metadata.get("kwargs") or {}).get("column_name"),
            "status": status, "message": message, "failures": failures}


def _outcome(source: str, why: str, expected: dict, statuses: dict[str, tuple], manifest: dict,
             invocation_id=None, tested_at=None) -> DbtTestsOutcome:
    nodes = {**(manifest.get("nodes") or {}), **(manifest.get("sources") or {})}
    failed, warned, skipped = [], [], []
    for uid, node in sorted(expected.items()):
        status, message, failures = statuses.get(uid, ("not run", None, None))
        entry = _test_entry(uid, node, status, message, failures, nodes)
        if status in FAILING_TEST_STATUSES:
            failed.append(entry)
        elif status == "warn":
            warned.append(entry)
        elif status != "pass":
            skipped.append(entry)
    return DbtTestsOutcome(source=source, passed=not failed and not skipped, tests=len(expected), failed=failed,
                           warned=warned, skipped=skipped, why=why, invocation_id=invocation_id, tested_at=tested_at)


def current_results(project, manifest: dict, expected: dict[str, dict],
                    folder: Path | None = None) -> tuple[dict[str, tuple], str, dict]:
    """({test: (status, message, failures)} of the expected tests whose result in
    folder/run_results.json is current, why the others are not, the results' metadata).

    A result is current when run_results.json was written by the same dbt invocation as the
    manifest (no later dbt command rebuilt or re-parsed anything), for the same target, after the
    last change to the project's files; and the test finished after every node it tests was built
    in that invocation. A skipped test has no result.
    """
    from dwml_py.dbt_artifacts import read_artifact
    from dwml_py.manifest_state import newest_project_file

    folder = folder or project.target_dir
    path = folder / "run_results.json"
    if not path.is_file():
        return {}, f"no {path.name} in {folder}", {}
    try:
        results = read_artifact(path, "run_results")
    except DwmlError as exc:
        return {}, f"{path.name} could not be read ({exc.message})", {}
    metadata = results.get("metadata") or {}
    if "run-results" not in str(metadata.get("dbt_schema_version") or ""):
        return {}, f"{path} is not a dbt run_results.json", {}
    invocation = metadata.get("invocation_id")
    manifest_invocation = (manifest.get("metadata") or {}).get("invocation_id")
    if invocation and manifest_invocation and invocation != manifest_invocation:
        return {}, "a later dbt command rewrote manifest.json, so models may have been rebuilt since the tests ran", {}
    ran_target = (results.get("args") or {}).get("target")
    if ran_target and ran_target != project.profile.target_name:
        return {}, f"the results are from target {ran_target!r}, not {project.profile.target_name!r}", {}
    newest = newest_project_file(project)
    if newest is not None and newest.stat().st_mtime > path.stat().st_mtime:
        return {}, f"{newest.name} changed after the tests ran", {}

    by_id = {r.get("unique_id"): r for r in results.get("results") or []}
    completed = {uid: _completed_at(r) for uid, r in by_id.items()}
    current: dict[str, tuple] = {}
    stale: list[str] = []
    for uid, node in expected.items():
        result = by_id.get(uid)
        if result is None:
            continue
        tested = completed.get(uid)
        rebuilt = [p for p in (node.get("depends_on") or {}).get("nodes") or []
                   if completed.get(p) and tested and tested < completed[p]]
        if rebuilt:
            stale.append(f"{node.get('name')} ran before {rebuilt[0]} was last built")
        elif str(result.get("status")) in TEST_RESULT_STATUSES:
            current[uid] = (str(result.get("status")), result.get("message"), result.get("failures"))
    missing = [uid for uid in expected if uid not in by_id]
    # skipped, or only compiled (`dbt compile` lists tests with status "success"): no verdict
    skipped = sum(1 for uid in expected if uid in by_id and str(by_id[uid].get("status")) not in TEST_RESULT_STATUSES)
    reasons = []
    if missing:
        shown = ", ".join((expected[m].get("name") or m) for m in missing[:3]) + (" ..." if len(missing) > 3 else "")
        reasons.append(f"{path.name} does not cover {len(missing)} of the {len(expected)} tests ({shown})")
    reasons += stale[:1]
    if skipped:
        reasons.append(f"{skipped} test(s) were skipped (or only compiled) in the last run")
    why = "; ".join(reasons) or f"{path.name} is current and covers every test"
    return current, why, {"invocation_id": invocation, "tested_at": metadata.get("generated_at")}


def reuse_run_results(project, manifest: dict, expected: dict[str, dict],
                      folder: Path | None = None) -> tuple[DbtTestsOutcome | None, str]:
    """The test outcome from target/run_results.json when every expected test has a current
    result there (see `current_results`), else (None, why not). A current failure settles the
    verdict even when other tests lack a result."""
    current, why, metadata = current_results(project, manifest, expected, folder)
    if len(current) < len(expected) and not any(s in FAILING_TEST_STATUSES for s, _, _ in current.values()):
        return None, why
    outcome = _outcome("run_results", why, expected, current, manifest, invocation_id=metadata.get("invocation_id"),
                       tested_at=metadata.get("tested_at"))
    return outcome, outcome.why


def _gate_results(project, expected: dict[str, dict]) -> dict[str, tuple]:
    """Current results of an earlier gate's `dbt test` (in project.gate_target_dir): the same rules
    as for target/run_results.json, judged against the manifest of that run, and no dbt command
    has written target/ since (a later `dbt run` may have rebuilt the data the tests judged)."""
    from dwml_py.dbt_artifacts import read_artifact

    folder = project.gate_target_dir
    results, manifest_path = folder / "run_results.json", folder / "manifest.json"
    if not (results.is_file() and manifest_path.is_file()):
        return {}
    if project.manifest_path.is_file() and project.manifest_path.stat().st_mtime > results.stat().st_mtime:
        return {}
    try:
        manifest = read_artifact(manifest_path, "manifest")
    except DwmlError:
        return {}
    return current_results(project, manifest, expected, folder)[0]


@dataclass
class TestPlan:
    """Which expected tests have a current result (target/run_results.json, or the last gate's
    `dbt test`), and which must run."""

    current: dict[str, tuple]
    missing: list[str]
    why: str
    metadata: dict


TestPlan.__test__ = False  # not a pytest class


def plan_dbt_tests(project, manifest: dict, expected: dict[str, dict]) -> TestPlan:
    current, why, metadata = current_results(project, manifest, expected)
    from_gate = _gate_results(project, expected)
    if from_gate:
        current = {**current, **from_gate}  # the gate's run came later
        why += "; the last gate's `dbt test` covers " + (
            "the rest" if len(current) == len(expected) else f"{len(from_gate)} of them")
    return TestPlan(current, [uid for uid in expected if uid not in current], why, metadata)


def _completed_at(result: dict) -> dt.datetime | None:
    for step in result.get("timing") or []:
        if step.get("name") == "execute" and step.get("completed_at"):
            try:
                return dt.datetime.fromisoformat(str(step["completed_at"]).replace("Z", "+00:00"))
            except ValueError:
                return None
    return None


def run_model_tests(project, model_name: str, why: str, tests: list[str] | None = None) -> tuple[dict, dict]:
    """Run dbt test in-process; returns ({test: (status, message, failures)}, the manifest dbt ran with).

    Without `tests`, every test of the model and its ancestors: `dbt test --select +MODEL
    --indirect-selection cautious`; with `tests` (names), only those. The run writes to
    project.gate_target_dir, not target/: the project's manifest keeps the compiled SQL of every
    model, which lineage needs, and the next gate can reuse these results."""
    from dwml_py.dbt_artifacts import read_artifact
    from dwml_py.dbt_runner import run_dbt

    # cautious: only tests whose every parent is selected, i.e. the tests about this model and
    # its ancestors; eager selection would also run (and fail on) tests of sibling models.
    select = ["--select", *tests] if tests else ["--select", f"+{model_name}", "--indirect-selection", "cautious"]
    run = run_dbt(project, ["test", *select], target_path=project.gate_target_dir)
    manifest = read_artifact(project.gate_target_dir / "manifest.json", "manifest")
    statuses = {n.unique_id: (n.status, n.message, n.failures) for n in run.nodes if n.resource_type == "test"}
    return statuses, manifest


def _resolve_uid(manifest: dict, model: str) -> str:
    from dwml_py.catalog import Catalog

    return Catalog.from_dicts(manifest).resolve(model)


def dbt_tests_check(outcome: DbtTestsOutcome, model: str) -> dict:
    if outcome.failed:
        names = ", ".join(f"{t['name']} ({t['status']})" for t in outcome.failed[:8])
        more = f" and {len(outcome.failed) - 8} more" if len(outcome.failed) > 8 else ""
        return _check("dbt_tests", False, f"{len(outcome.failed)} of {outcome.tests} dbt test(s) on {model} and upstream "
                      f"failed: {names}{more}.", _TEST_HINT.format(model=model),
                      failed=[t["name"] for t in outcome.failed])
    if outcome.skipped:
        names = ", ".join(t["name"] for t in outcome.skipped[:8])
        return _check("dbt_tests", False, f"{len(outcome.skipped)} dbt test(s) did not run: {names}.",
                      f"build the models they test (`dbt build --select +{model}`) and check again.",
                      failed=[t["name"] for t in outcome.skipped])
    warned = f" ({len(outcome.warned)} warned)" if outcome.warned else ""
    return _check("dbt_tests", True, f"{outcome.tests} dbt test(s) on {model} and upstream passed{warned} "
                  f"(source: {outcome.source}).")


# -- the gate ---------------------------------------------------------------------------------

def quality_gate(project, model: str, override: bool = False, reason: str | None = None, warehouse=None,
                 rerun_tests: bool = False) -> dict:
    """Run the quality gate on a dbt model; record the decision in dwml.audit_log.

    Returns {"model", "passed", "checks", "dbt_tests", "thresholds", "override", "overridden",
    "decision", "audit_event_id", ...}. A failing gate is not an exception: `passed` is False and
    every failing check has a `hint`. `override=True` needs a `reason` (InputError otherwise) and
    turns a failing gate into a passing, `overridden` one.
    """
    reason = _check_override(override, reason)
    from dwml_py.catalog import Catalog
    from dwml_py.manifest_state import manifest_state, read_manifest

    state = manifest_state(project)
    manifest = read_manifest(project, state) if state.exists and not state.stale else None
    uid = _resolve_uid(manifest, model) if manifest is not None else None  # NotFoundError early, before dbt runs

    if manifest is None:
        why = "target/manifest.json is " + ("missing" if not state.exists else "older than the project's files")
        statuses, manifest = run_model_tests(project, model, why)
        uid = _resolve_uid(manifest, model)
        expected = _with_extra(expected_tests(manifest, ancestors(manifest, uid)), statuses, manifest)
        outcome = _outcome("dbt test", why, expected, statuses, manifest,
                           invocation_id=(manifest.get("metadata") or {}).get("invocation_id"),
                           tested_at=dt.datetime.now(dt.timezone.utc).isoformat())
    else:
        outcome = _dbt_tests(project, manifest, uid, rerun_tests)

    catalog = Catalog.from_dicts(manifest)
    node = catalog.node(uid)
    dwml_meta = node.meta.get("dwml") if isinstance(node.meta.get("dwml"), dict) else {}
    entity = dwml_meta.get("entity") or []
    entity = [entity] if isinstance(entity, str) else list(entity)
    timestamp = dwml_meta.get("timestamp")
    thresholds = resolve_thresholds(project.config, node.meta)

    from dwml_py.profiling import profile_relation
    from dwml_py.warehouse import given_or_connected

    with given_or_connected(project, warehouse) as warehouse:
        checks = [dbt_tests_check(outcome, node.display_name)]
        relation = f"{node.schema}.{node.alias}"
        profile = None
        if node.schema and node.alias and warehouse.table_exists(node.schema, node.alias):
            names = {c for c, _ in warehouse.columns(node.schema, node.alias)}
            key = [*entity, *([timestamp] if timestamp else [])]
            missing = [k for k in key if k not in names]
            check_keys = thresholds.no_duplicate_keys and bool(entity) and not missing
            profile = profile_relation(warehouse, node.schema, node.alias,
                                       entity_key=key if check_keys else None, top_k=0)
            checks += profile_checks(profile, thresholds, entity, timestamp, node.display_name)
            if missing and thresholds.no_duplicate_keys:
                checks = [c for c in checks if c["check"] != "no_duplicate_keys"]
                checks.append(_check("no_duplicate_keys", False, f"the key column(s) {', '.join(missing)} named in "
                                     f"meta.dwml are not columns of {relation}.",
                                     f"fix meta.dwml.entity / meta.dwml.timestamp of {node.display_name}."))
        else:
            checks.append(_check("relation_exists", False, f"{relation} does not exist in the warehouse.",
                                 f"build it: `dbt build --select +{node.display_name}`."))
        failed = [c for c in checks if not c["passed"]]
        passed = not failed
        overridden = bool(override and failed)
        decision = "pass" if passed else ("overridden" if overridden else "fail")
        override_info = None
        if override:
            override_info = {"requested": True, "applied": overridden, "reason": reason}
        result = {
            "model": node.display_name, "unique_id": uid, "relation": relation,
            "passed": passed or overridden, "overridden": overridden, "decision": decision,
            "checks": checks, "failed_checks": [c["check"] for c in failed],
            "dbt_tests": outcome.to_dict(), "thresholds": thresholds.to_dict(),
            "entity": entity, "timestamp": timestamp,
            "row_count": profile.row_count if profile else None,
            "profile_id": profile.profile_id if profile else None,
            "override": override_info,
        }
        from dwml_py.audit import current_actor, record_event

        actor = current_actor()
        reasons = [{"check": c["check"], "column": c.get("column"), "detail": c["detail"]} for c in failed]
        if override:
            reasons.append({"override_reason": reason})
        result["actor"] = actor
        result["audit_event_id"] = record_event(
            warehouse, AUDIT_ACTION, decision, object_type="model", object_name=node.display_name,
            reasons=reasons, actor=actor,
            details={"unique_id": uid, "dbt_tests": {"source": outcome.source, "why": outcome.why,
                                                     "tests": outcome.tests, "invocation_id": outcome.invocation_id,
                                                     "failed": [t["name"] for t in outcome.failed]},
                     "thresholds": thresholds.to_dict(), "profile_id": result["profile_id"],
                     "override": override_info})
    return result


def _dbt_tests(project, manifest: dict, uid: str, rerun_tests: bool) -> DbtTestsOutcome:
    """The dbt tests of the model and its ancestors: current results where they exist, `dbt test`
    of the others only (of all of them when none is current, or when asked to rerun)."""
    expected = expected_tests(manifest, ancestors(manifest, uid))
    name = (manifest.get("nodes") or {}).get(uid, {}).get("name") or uid
    if rerun_tests:
        plan = TestPlan({}, list(expected), "asked to rerun the tests", {})
    else:
        plan = plan_dbt_tests(project, manifest, expected)
    failed_already = any(status in FAILING_TEST_STATUSES for status, _, _ in plan.current.values())
    if not plan.missing or failed_already:  # a current failure settles the verdict: nothing to run
        return _outcome("run_results", plan.why, expected, plan.current, manifest,
                        invocation_id=plan.metadata.get("invocation_id"), tested_at=plan.metadata.get("tested_at"))
    nodes = manifest.get("nodes") or {}
    names = None if not plan.current else [nodes[t].get("name") or t for t in plan.missing]
    statuses, _ = run_model_tests(project, name, plan.why, tests=names)
    expected = _with_extra(expected, statuses, manifest)
    outcome = _outcome("dbt test" if not plan.current else "run_results + dbt test", plan.why, expected,
                       {**plan.current, **statuses}, manifest,
                       invocation_id=(manifest.get("metadata") or {}).get("invocation_id"),
                       tested_at=dt.datetime.now(dt.timezone.utc).isoformat())
    outcome.reused, outcome.ran = len(plan.current), len(statuses)
    return outcome


def _with_extra(expected: dict, statuses: dict, manifest: dict) -> dict:
    """A test dbt ran that we did not expect is still about this selection: judge it too."""
    nodes = manifest.get("nodes") or {}
    return {**expected, **{uid: nodes[uid] for uid in set(statuses) - set(expected) if uid in nodes}}


def _check_override(override: bool, reason: str | None) -> str | None:
    reason = reason.strip() if isinstance(reason, str) else reason
    if override and not reason:
        raise InputError("An override of the quality gate needs a reason; none was given.",
                         hint='pass --reason "why this data may be used anyway" (it is recorded in dwml.audit_log).')
    if reason and not override:
        raise InputError(f"A reason was given ({reason!r}) without an override.",
                         hint="add --override to override a failing gate, or leave out --reason.")
    return reason or None

