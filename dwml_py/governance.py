"""The governance gate: which columns hold personal data, how sensitive they are, and whether the
project's policies allow them as features.

PII is found by four routes, each reported per column with its evidence:

* **meta**: the column's yml says so: meta `pii` / `contains_pii`, a `pii` tag, or a column-level
  `classification` of confidential or restricted.
* **lineage**: the column is computed from a PII column upstream (column-level lineage through
  the dbt DAG, dwml_py.lineage), e.g. `customer_features.age_years` from `stg_customers.birth_date`.
* **name** and **values**: the column's name says so (email, phone, ssn, birth_date, ...), or a
  sample of its values looks like e-mail addresses, phone or card numbers, national IDs, IBANs or
  IP addresses; the rules are in dwml_py.pii, which the catalog and lineage use as well.
  `sample_rows` (1,000) values of each string column are fetched with LIMIT, and a column is
  flagged when `min_match_share` (0.5) of its non-null sampled values are of one kind.

Classification levels are public < internal < confidential < restricted. A column's level is its
own meta `classification`, else its model's, else unclassified (treated as internal); PII
raises it to at least confidential.

Policies come from `vars: dwml: governance:` in dbt_project.yml (defaults shown):

```yaml
vars:
  dwml:
    governance:
      allow_pii_features: false              # rule pii_feature
      max_feature_classification: confidential  # rule classification (restricted is refused)
      require_owner: true                    # rule owner_required (meta.owner or a dbt group)
      require_description: true             # rule description_required
      sample_rows: 1000                      # 0 turns the values route off
      min_match_share: 0.5
```

A feature model may grant exceptions, each with a reason (an exception without one is itself a
violation, rule `exception_reason_required`, and is not honoured):

```yaml
config:
  meta:
    dwml:
      governance:
        exceptions:
          age_years: {reason: "age bands are required by the pricing fairness review"}
          # or: age_years: "the reason", or a list of {column: ..., reason: ..., rules: [...]}
```

Every decision is appended to dwml.audit_log (action `gate.governance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dwml_py.errors import ConfigError, DwmlError, NotFoundError, did_you_mean
from dwml_py.governance_policy import DEFAULT_POLICY, LEVELS, resolve_policy  # noqa: F401 - re-exported
# The name and values routes live in dwml_py.pii (the catalog and lineage use them too); their
# functions are re-exported here for the callers that know them as the governance gate's.
from dwml_py.pii import (DEFAULT_MIN_MATCH_SHARE, DEFAULT_SAMPLE_ROWS, is_string_type, luhn_valid,  # noqa: F401
                         name_pii, name_words, sample_string_columns, value_kind, value_shares, values_pii)
from dwml_py.settings import meta_section

AUDIT_ACTION = "gate.governance"
SENSITIVE_LEVELS = ("confidential", "restricted")
ROUTES = ("meta", "lineage", "name", "values")

# The rules an exception waives when it names none.
EXCEPTION_RULES = ("pii_feature", "classification")

# -- policy ----------------------------------------------------------------------------------

def model_exceptions(meta: dict) -> tuple[dict[str, dict], list[dict]]:
    """Exceptions granted by `meta.dwml.governance.exceptions`: ({column: {reason, rules}}, violations)."""
    governance = meta_section(meta, "governance")
    raw = (governance or {}).get("exceptions") if isinstance(governance, dict) else None
    if not raw:
        return {}, []
    if isinstance(raw, dict):
        items = [(column, spec) for column, spec in raw.items()]
    elif isinstance(raw, list):
        items = [((spec or {}).get("column"), spec) if isinstance(spec, dict) else (None, spec) for spec in raw]
    else:
        raise ConfigError(f"meta.dwml.governance.exceptions must be a mapping or a list, got {raw!r}.",
                          hint="e.g. exceptions: {age_years: {reason: 'why this column may be a feature'}}")
    granted: dict[str, dict] = {}
    violations: list[dict] = []
    for column, spec in items:
        if not column:
            raise ConfigError(f"An exception in meta.dwml.governance.exceptions names no column: {spec!r}.",
                              hint="write {column: COLUMN, reason: WHY}.")
        reason = spec if isinstance(spec, str) else (spec or {}).get("reason") if isinstance(spec, dict) else None
        rules = (spec.get("rules") if isinstance(spec, dict) else None) or list(EXCEPTION_RULES)
        rules = [rules] if isinstance(rules, str) else list(rules)
        if not isinstance(reason, str) or not reason.strip():
            violations.append(_violation("exception_reason_required", str(column),
                                         f"the exception for {column} gives no reason, so it is not honoured.",
                                         f"add a reason: exceptions: {{{column}: {{reason: '...'}}}} in meta.dwml.governance."))
            continue
        granted[str(column).lower()] = {"column": str(column), "reason": reason.strip(), "rules": rules}
    return granted, violations


def _violation(rule: str, column: str | None, detail: str, hint: str) -> dict:
    return {"rule": rule, "column": column, "detail": detail, "hint": hint}


def level_rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else LEVELS.index("internal")


# -- the gate ---------------------------------------------------------------------------------

@dataclass
class ColumnFinding:
    column: str
    data_type: str | None = None
    routes: list[str] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)
    pii_types: list[str] = field(default_factory=list)
    declared_classification: str | None = None
    classification: str = "internal"

    @property
    def pii(self) -> bool:
        return bool(self.routes)

    def add(self, route: str, detail: str, pii_type: str | None = None) -> None:
        if route not in self.routes:
            self.routes.append(route)
            self.routes.sort(key=ROUTES.index)
        self.evidence.append({"route": route, "detail": detail})
        if pii_type and pii_type not in self.pii_types:
            self.pii_types.append(pii_type)

    def to_dict(self) -> dict:
        return {"column": self.column, "pii": self.pii, "routes": list(self.routes), "pii_types": self.pii_types,
                "classification": self.classification, "declared_classification": self.declared_classification,
                "data_type": self.data_type, "evidence": self.evidence}


def governance_gate(project, model: str, columns: list[str] | None = None, warehouse=None,
                    sample: bool = True, catalog=None) -> dict:
    """Check a model's (feature) columns for PII and its policies; record the decision.

    `columns` defaults to the model's columns minus meta.dwml.entity and meta.dwml.timestamp.
    Returns {"model", "passed", "columns", "violations", "exceptions_used", "policy", "notes",
    "decision", "audit_event_id", "actor"}; `passed` is False when any violation remains.
    """
    from dwml_py.warehouse import given_or_connected

    policy = resolve_policy(project.config)
    with given_or_connected(project, warehouse) as warehouse:
        result = _evaluate(project, model, columns, warehouse, policy, sample, catalog)
        from dwml_py.audit import current_actor, record_event

        actor = current_actor()
        result["actor"] = actor
        result["audit_event_id"] = record_event(
            warehouse, AUDIT_ACTION, result["decision"], object_type="model", object_name=result["model"],
            reasons=[{"rule": v["rule"], "column": v["column"], "detail": v["detail"]} for v in result["violations"]],
            actor=actor,
            details={"columns_checked": [c["column"] for c in result["columns"]],
                     "pii_columns": {c["column"]: c["routes"] for c in result["columns"] if c["pii"]},
                     "exceptions_used": result["exceptions_used"], "policy": policy})
    return result


def _evaluate(project, model: str, columns: list[str] | None, warehouse, policy: dict, sample: bool,
              catalog=None) -> dict:
    notes: list[str] = []
    catalog, node = _catalog_node(project, model, warehouse, notes, catalog)
    if node is not None:
        schema, table = node.schema, node.alias
        display = node.display_name
    else:
        from dwml_py.relations import resolve_relation

        schema, table = resolve_relation(project, warehouse, model)
        display = model
        notes.append(f"{model} is not a node of the dbt manifest: meta and lineage routes were not used, and it has "
                     "no owner or description.")
    relation = f"{schema}.{table}"
    wh_types = dict(warehouse.columns(schema, table)) if schema and table else {}
    if not wh_types:
        notes.append(f"{relation} is not in the warehouse: the values route was not used (build it first).")

    known = list(wh_types) + [c for c in (node.columns if node else {}) if c.lower() not in {k.lower() for k in wh_types}]
    dwml_meta = (node.meta.get("dwml") if node is not None else None) or {}
    dwml_meta = dwml_meta if isinstance(dwml_meta, dict) else {}
    if columns:
        chosen = []
        for name in columns:
            match = next((k for k in known if k.lower() == str(name).lower()), None)
            if match is None:
                raise NotFoundError(f"{display} has no column {name!r}.", hint=did_you_mean(str(name), known))
            chosen.append(match)
    else:
        entity = dwml_meta.get("entity") or []
        skip = {str(k).lower() for k in ([entity] if isinstance(entity, str) else entity)}
        if dwml_meta.get("timestamp"):
            skip.add(str(dwml_meta["timestamp"]).lower())
        chosen = [k for k in known if k.lower() not in skip]

    findings = {name: ColumnFinding(name, data_type=wh_types.get(name) or _node_type(node, name)) for name in chosen}
    for finding in findings.values():
        if node is not None:
            _meta_route(node, finding)
    if node is not None:
        _lineage_route(catalog, node, findings, notes)
    for finding in findings.values():
        hit = name_pii(finding.column)
        if hit:
            finding.add("name", f"the name contains {hit[1]!r}", hit[0])
    if sample and policy["sample_rows"] > 0 and wh_types:
        _values_route(warehouse, schema, table, findings, policy)
    for finding in findings.values():
        level = finding.declared_classification if finding.declared_classification in LEVELS else None
        if level is None and node is not None and node.classification in LEVELS:
            level = node.classification
        if finding.pii and level_rank(level) < level_rank("confidential"):
            level = "confidential"
        finding.classification = level or "internal"

    violations, used = _apply_policy(node, display, findings, policy)
    passed = not violations
    return {"model": display, "unique_id": node.unique_id if node else None, "relation": relation,
            "passed": passed, "decision": "pass" if passed else "fail",
            "columns": [f.to_dict() for f in findings.values()],
            "pii_columns": [f.column for f in findings.values() if f.pii],
            "violations": violations, "exceptions_used": used, "policy": policy,
            "owner": node.owner if node else None, "notes": notes}


def _catalog_node(project, model: str, warehouse, notes: list[str], catalog=None):
    """The catalog and the model's node; (catalog, None) for a relation dbt does not know.

    Lineage needs fresh yml and compiled SQL of the model and its ancestors: a missing or stale
    manifest is parsed, and the compiled SQL it lacks (a manifest written by `dbt test` or `dbt
    parse`) is compiled for those models only (Catalog.ensure_compiled). A command that loaded
    the catalog already passes it.
    """
    from dwml_py.catalog import Catalog

    if catalog is None:
        catalog = Catalog.load(project, refresh=True, warehouse=warehouse)
    try:
        node = catalog.show(model)
    except NotFoundError:
        if "." not in model:
            raise
        notes.extend(catalog.notes)
        return catalog, None
    if catalog.ensure_compiled([node.unique_id]):
        node = catalog.show(node.unique_id)
    notes.extend(catalog.notes)
    return catalog, node


def _node_type(node, name: str) -> str | None:
    col = node.columns.get(name) if node is not None else None
    return col.type if col is not None else None


def _meta_route(node, finding: ColumnFinding) -> None:
    from dwml_py.catalog import is_pii

    col = node.columns.get(finding.column) or next(
        (c for c in node.columns.values() if c.name.lower() == finding.column.lower()), None)
    if col is None:
        return
    level = col.meta.get("classification")
    if isinstance(level, str):
        finding.declared_classification = level.lower()
    # col.pii also counts the name and sampled values: the meta route is what the yml declares
    said = [f"meta {k}: {col.meta[k]}" for k in ("pii", "contains_pii") if k in col.meta and is_pii({k: col.meta[k]}, [])]
    if any(str(t).lower() == "pii" for t in col.tags):
        said.append("tag pii")
    if finding.declared_classification in SENSITIVE_LEVELS:
        said.append(f"classification: {finding.declared_classification}")
    if said:
        finding.add("meta", f"{node.display_name}.{col.name} yml: " + ", ".join(said))


def _lineage_route(catalog, node, findings: dict[str, ColumnFinding], notes: list[str]) -> None:
    from dwml_py.lineage import column_lineage

    reported = set()
    for finding in findings.values():
        try:
            traced = column_lineage(catalog, node.unique_id, finding.column)
        except DwmlError as exc:
            notes.append(f"lineage of {finding.column}: {exc.message}")
            continue
        for uid, reason in traced.unavailable.items():
            if uid not in reported:
                reported.add(uid)
                notes.append(f"no column lineage through {uid}: {reason}")
        for step in traced.ancestors:  # nearest first: the first PII ancestor is the evidence
            if step.ref.node_id not in catalog:
                continue
            upstream = catalog.node(step.ref.node_id)
            col = upstream.columns.get(step.ref.column) or next(
                (c for c in upstream.columns.values() if c.name.lower() == step.ref.column.lower()), None)
            if col is not None and col.pii:
                path = " <- ".join(f"{catalog.node(r.node_id).display_name}.{r.column}" if r.node_id in catalog
                                   else str(r) for r in traced.path(step.ref))
                finding.add("lineage", f"derived from PII {upstream.display_name}.{col.name} ({path})")
                break


def _values_route(warehouse, schema: str, table: str, findings: dict[str, ColumnFinding], policy: dict) -> None:
    strings = [f.column for f in findings.values() if is_string_type(f.data_type)]
    sampled = sample_string_columns(warehouse, schema, table, strings, policy["sample_rows"])
    for name, values in sampled.items():
        found = values_pii(values, policy["min_match_share"])
        if found:
            kind, share, seen = found
            findings[name].add("values", f"{share:.0%} of {seen:,} sampled values look like {kind.replace('_', ' ')}"
                               " (e.g. the pattern of " + _example(kind) + ")", kind)


def _example(kind: str) -> str:
    return {"email": "name@domain.tld", "phone": "+CC NNN...", "payment_card": "a Luhn-valid card number",
            "national_id": "a national ID number", "bank_account": "an IBAN", "ip_address": "an IP address"}[kind]


def _apply_policy(node, display: str, findings: dict[str, ColumnFinding], policy: dict) -> tuple[list, list]:
    violations: list[dict] = []
    granted, exception_violations = model_exceptions(node.meta if node is not None else {})
    violations.extend(exception_violations)
    used: list[dict] = []
    max_level = policy["max_feature_classification"]
    for finding in findings.values():
        broken = []
        if finding.pii and not policy["allow_pii_features"]:
            broken.append(_violation("pii_feature", finding.column,
                                     f"{finding.column} holds PII (found by {', '.join(finding.routes)}) and PII may not "
                                     "be a feature.",
                                     f"drop {finding.column} from the features, or grant an exception with a reason in "
                                     f"meta.dwml.governance.exceptions of {display}."))
        if level_rank(finding.classification) > level_rank(max_level):
            broken.append(_violation("classification", finding.column,
                                     f"{finding.column} is {finding.classification}; features may be at most {max_level}.",
                                     f"drop {finding.column}, or grant an exception with a reason in "
                                     f"meta.dwml.governance.exceptions of {display}."))
        exception = granted.get(finding.column.lower())
        if exception:
            waived = [v["rule"] for v in broken if v["rule"] in exception["rules"]]
            if waived:
                used.append({"column": finding.column, "reason": exception["reason"], "rules_waived": waived})
            broken = [v for v in broken if v["rule"] not in exception["rules"]]
        violations.extend(broken)
    if policy["require_owner"] and not (node is not None and node.owner):
        violations.append(_violation("owner_required", None, f"{display} has no owner.",
                                     f"set meta.owner (or a dbt group with an owner) on {display}."))
    if policy["require_description"] and not (node is not None and node.description.strip()):
        violations.append(_violation("description_required", None, f"{display} has no description.",
                                     f"add a description to {display} in its yml."))
    return violations, used
