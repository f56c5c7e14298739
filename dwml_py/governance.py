"""The governance gate: which columns hold personal data, how sensitive they are, and whether the
project's policies allow them as features.

PII is found by four routes, each reported per column with its evidence:

* **meta**: the column's yml says so: meta `pii` / `contains_pii`, a `pii` tag, or a column-level
  `classification` of confidential or restricted.
* **lineage**: the column is computed from a PII column upstream (column-level lineage through
  the dbt DAG, dwml_py.lineage), e.g. `customer_features.age_years` from `stg_customers.birth_date`.
* **name**: the column's name says so (email, phone, ssn, dob, birth_date, first/last/full_name,
  address, zip/postcode, ip_address, credit_card, iban, passport, national_id, tax_id, ...).
  Names are split into words (snake_case, camelCase, digits), and a PII term must appear as
  whole words: `email_address` and `customerEmail` match, `emailed` does not. A name that also
  holds a word of counting or flagging (`count`, `is`, `has`, `verified`, `domain`, `rate`,
  `opt`, ...) describes the data rather than holding it, so `phone_count`, `has_email` and
  `email_domain` are not flagged by name (lineage still finds them if they derive from PII).
* **values**: a small sample of each string column (the first `sample_rows` rows, 1,000 by
  default, fetched with LIMIT so that any engine can run it) is matched against e-mail
  addresses, phone numbers (international `+` form or grouped national forms; bare digit
  strings are too ambiguous), payment card numbers (13-19 digits that pass the Luhn check and
  start like a card network, 2-6), US social security numbers (`123-45-6789`, invalid areas
  excluded), UK national insurance numbers, IBANs (mod-97 check) and IPv4/IPv6 addresses. A
  column is flagged when the share of its non-null sampled values of one kind reaches
  `min_match_share` (0.5 by default).

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

import ipaddress
import re
from dataclasses import dataclass, field

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, DwmlError, NotFoundError, did_you_mean

AUDIT_ACTION = "gate.governance"
LEVELS = ("public", "internal", "confidential", "restricted")
SENSITIVE_LEVELS = ("confidential", "restricted")
ROUTES = ("meta", "lineage", "name", "values")

DEFAULT_POLICY = {
    "allow_pii_features": False,
    "max_feature_classification": "confidential",
    "require_owner": True,
    "require_description": True,
    "sample_rows": 1000,
    "min_match_share": 0.5,
}
# The rules an exception waives when it names none.
EXCEPTION_RULES = ("pii_feature", "classification")

# -- the name route ---------------------------------------------------------------------------

# (words of the term, kind of PII). Longer terms are tried first, so `ip_address` is an IP address
# rather than a postal address, and `email_address` an e-mail address.
_NAME_TERMS: list[tuple[tuple[str, ...], str]] = [
    (("email",), "email"), (("e", "mail"), "email"), (("email", "address"), "email"),
    (("mail", "address"), "email"),
    (("phone",), "phone"), (("telephone",), "phone"), (("mobile",), "phone"), (("cellphone",), "phone"),
    (("msisdn",), "phone"), (("fax",), "phone"),
    (("ssn",), "national_id"), (("social", "security"), "national_id"), (("national", "id"), "national_id"),
    (("national", "insurance"), "national_id"), (("nino",), "national_id"), (("tax", "id"), "national_id"),
    (("taxpayer", "id"), "national_id"), (("passport",), "passport"),
    (("driver", "license"), "national_id"), (("drivers", "license"), "national_id"),
    (("driving", "licence"), "national_id"),
    (("dob",), "birth_date"), (("birth", "date"), "birth_date"), (("date", "of", "birth"), "birth_date"),
    (("birthdate",), "birth_date"), (("birthday",), "birth_date"),
    (("first", "name"), "name"), (("last", "name"), "name"), (("full", "name"), "name"),
    (("middle", "name"), "name"), (("maiden", "name"), "name"), (("given", "name"), "name"),
    (("family", "name"), "name"), (("firstname",), "name"), (("lastname",), "name"),
    (("fullname",), "name"), (("surname",), "name"),
    (("address",), "address"), (("street",), "address"), (("zip",), "address"), (("zipcode",), "address"),
    (("postcode",), "address"), (("postal", "code"), "address"), (("post", "code"), "address"),
    (("ip", "address"), "ip_address"), (("ip",), "ip_address"), (("ipv4",), "ip_address"),
    (("ipv6",), "ip_address"),
    (("credit", "card"), "payment_card"), (("card", "number"), "payment_card"), (("cc", "number"), "payment_card"),
    (("pan",), "payment_card"), (("iban",), "bank_account"), (("account", "number"), "bank_account"),
    (("bank", "account"), "bank_account"),
]
_NAME_TERMS.sort(key=lambda t: -len(t[0]))
_TERM_WORDS = {w for words, _ in _NAME_TERMS for w in words}
# Words that make a name describe the data instead of holding it: counts, flags, shares, parts.
DERIVED_WORDS = frozenset({
    "count", "counts", "cnt", "num", "n", "nb", "total", "sum", "avg", "mean", "min", "max", "distinct",
    "is", "has", "flag", "verified", "valid", "validated", "bounced", "provided", "missing", "known",
    "present", "domain", "type", "kind", "length", "len", "rate", "share", "pct", "ratio",
    "opt", "optin", "consent", "changes", "changed", "days", "since", "country", "region",
})


def name_words(name: str) -> list[str]:
    """A column name as lower-case words: snake_case, camelCase and digits split.

    >>> name_words("customerEmail_2"), name_words("E_Mail"), name_words("IPAddress")
    (['customer', 'email', '2'], ['e', 'mail'], ['ip', 'address'])
    """
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", str(name))
    out = []
    for word in (w.lower() for w in words):
        # plural of a PII word: `emails`, `phones`
        out.append(word[:-1] if word.endswith("s") and word[:-1] in _TERM_WORDS else word)
    return out


def name_pii(name: str) -> tuple[str, str] | None:
    """(kind of PII, matched term) when the column name says it holds PII, else None.

    >>> name_pii("billing_email"), name_pii("phone_count"), name_pii("ip_address"), name_pii("emailed")
    (('email', 'email'), None, ('ip_address', 'ip_address'), None)
    """
    words = name_words(name)
    if not words or any(w in DERIVED_WORDS for w in words):
        return None
    for term, kind in _NAME_TERMS:
        n = len(term)
        if any(tuple(words[i:i + n]) == term for i in range(len(words) - n + 1)):
            return kind, "_".join(term)
    return None


# -- the values route -------------------------------------------------------------------------

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_PHONE_INTL = re.compile(r"^\+\d[\d\s().-]{5,20}\d$")
_PHONE_GROUPED = re.compile(r"^(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-])\d{2,5}(?:[\s.-]\d{2,5}){0,3}$")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
_NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")

VALUE_KINDS = ("email", "phone", "payment_card", "national_id", "bank_account", "ip_address")


def luhn_valid(number: str) -> bool:
    """The Luhn checksum of a digit string (spaces and dashes ignored), as card numbers carry it.

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(c) for c in str(number) if c.isdigit()]
    if len(digits) < 2 or len(digits) != len(re.sub(r"[\s-]", "", str(number))):
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    rearranged = value[4:] + value[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def value_kind(value) -> str | None:
    """The kind of PII one value looks like, or None.

    >>> [value_kind(v) for v in ("ana@example.com", "+44 20 7946 0958", "4111111111111111",
    ...                          "4111111111111112", "078-05-1120", "10.0.0.1", "hello")]
    ['email', 'phone', 'payment_card', None, 'national_id', 'ip_address', None]
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 254:
        return None
    if "@" in text:
        return "email" if _EMAIL.match(text) else None
    if _CARD.match(text):
        digits = re.sub(r"\D", "", text)
        # a card network's first digit (2-6) and a valid checksum; all-equal digits pass Luhn trivially
        if digits[0] in "23456" and len(set(digits)) > 1 and luhn_valid(text):
            return "payment_card"
    if _SSN.match(text) or _NINO.match(text.upper()):
        return "national_id"
    compact = text.replace(" ", "").upper()
    if _IBAN.match(compact) and _iban_valid(compact):
        return "bank_account"
    if ("." in text or ":" in text) and _is_ip(text):
        return "ip_address"
    if not _DATE_LIKE.match(text) and (_PHONE_INTL.match(text) or _PHONE_GROUPED.match(text)):
        digits = sum(c.isdigit() for c in text)
        if 7 <= digits <= 15:  # E.164 allows at most 15 digits
            return "phone"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def value_shares(values) -> tuple[int, dict[str, float]]:
    """(non-null values seen, share of them per PII kind found)."""
    seen = 0
    counts: dict[str, int] = {}
    for value in values:
        if value is None:
            continue
        seen += 1
        kind = value_kind(value)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return seen, {k: c / seen for k, c in counts.items()} if seen else {}


def sample_string_columns(warehouse, schema: str, table: str, columns: list[str], rows: int) -> dict[str, list]:
    """The first `rows` values of each column, in one query inside the warehouse."""
    if not columns or rows <= 0:
        return {}
    query = exp.select(*[sqlmod.column(c) for c in columns]).from_(sqlmod.table(schema, table)).limit(int(rows))
    data = warehouse.fetch_arrow(query)
    return {c: data.column(i).to_pylist() for i, c in enumerate(columns)}


def is_string_type(data_type: str | None) -> bool:
    lowered = str(data_type or "").lower()
    return any(word in lowered for word in ("char", "text", "string", "varchar")) and "[]" not in lowered


# -- policy ----------------------------------------------------------------------------------

def resolve_policy(project_config: dict) -> dict:
    """The defaults overridden by `vars: dwml: governance:` of dbt_project.yml."""
    where = "vars: dwml: governance: in dbt_project.yml"
    dwml_vars = ((project_config or {}).get("vars") or {}).get("dwml") or {}
    given = dwml_vars.get("governance") if isinstance(dwml_vars, dict) else None
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where} must be a mapping, got {given!r}.",
                          hint=f"known settings: {', '.join(DEFAULT_POLICY)}.")
    unknown = sorted(set(given) - set(DEFAULT_POLICY))
    if unknown:
        raise ConfigError(f"Unknown governance setting {unknown[0]!r} in {where}.",
                          hint=f"{did_you_mean(unknown[0], DEFAULT_POLICY)} (known: {', '.join(DEFAULT_POLICY)})")
    policy = {**DEFAULT_POLICY, **given}
    for key in ("allow_pii_features", "require_owner", "require_description"):
        if not isinstance(policy[key], bool):
            raise ConfigError(f"{key} in {where} must be true or false, got {policy[key]!r}.", hint=f"e.g. {key}: true")
    level = str(policy["max_feature_classification"]).lower()
    if level not in LEVELS:
        raise ConfigError(f"max_feature_classification in {where} must be one of {', '.join(LEVELS)}, "
                          f"got {policy['max_feature_classification']!r}.", hint=did_you_mean(level, LEVELS))
    policy["max_feature_classification"] = level
    rows = policy["sample_rows"]
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ConfigError(f"sample_rows in {where} must be a whole number >= 0, got {rows!r}.",
                          hint="e.g. sample_rows: 1000; 0 turns value sampling off.")
    share = policy["min_match_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError(f"min_match_share in {where} must be a share in (0, 1], got {share!r}.",
                          hint="e.g. min_match_share: 0.5 flags a column when half its sampled values match.")
    return policy


def model_exceptions(meta: dict) -> tuple[dict[str, dict], list[dict]]:
    """Exceptions granted by `meta.dwml.governance.exceptions`: ({column: {reason, rules}}, violations)."""
    dwml_meta = (meta or {}).get("dwml") or {}
    governance = dwml_meta.get("governance") if isinstance(dwml_meta, dict) else None
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
                    sample: bool = True) -> dict:
    """Check a model's (feature) columns for PII and its policies; record the decision.

    `columns` defaults to the model's columns minus meta.dwml.entity and meta.dwml.timestamp.
    Returns {"model", "passed", "columns", "violations", "exceptions_used", "policy", "notes",
    "decision", "audit_event_id", "actor"}; `passed` is False when any violation remains.
    """
    from dwml_py.warehouse import connect

    policy = resolve_policy(project.config)
    own = warehouse is None
    warehouse = connect(project) if own else warehouse
    try:
        result = _evaluate(project, model, columns, warehouse, policy, sample)
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
    finally:
        if own:
            warehouse.close()
    return result


def _evaluate(project, model: str, columns: list[str] | None, warehouse, policy: dict, sample: bool) -> dict:
    notes: list[str] = []
    catalog, node = _catalog_node(project, model, warehouse, notes)
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


def _catalog_node(project, model: str, warehouse, notes: list[str]):
    """The catalog and the model's node; (catalog, None) for a relation dbt does not know.

    Lineage needs fresh yml and compiled SQL of the model and its ancestors: a missing or stale
    manifest is refreshed, and a manifest without compiled SQL for them (written by `dbt test` or
    `dbt parse`) is completed by `dbt compile --select +MODEL`.
    """
    from dwml_py.catalog import Catalog
    from dwml_py.manifest_state import manifest_state

    state = manifest_state(project)
    catalog = Catalog.load(project, refresh=not state.exists or state.stale, warehouse=warehouse)
    try:
        node = catalog.show(model)
    except NotFoundError:
        if "." not in model:
            raise
        notes.extend(catalog.notes)
        return catalog, None
    from dwml_py.catalog import compile_upstream

    note = compile_upstream(project, catalog, node.unique_id)
    if note:
        notes.append(note)
        node = catalog.show(node.unique_id)
    notes.extend(catalog.notes)
    return catalog, node



def _node_type(node, name: str) -> str | None:
    col = node.columns.get(name) if node is not None else None
    return col.type if col is not None else None


def _meta_route(node, finding: ColumnFinding) -> None:
    col = node.columns.get(finding.column) or next(
        (c for c in node.columns.values() if c.name.lower() == finding.column.lower()), None)
    if col is None:
        return
    level = col.meta.get("classification")
    if isinstance(level, str):
        finding.declared_classification = level.lower()
    said = [f"meta {k}: {col.meta[k]}" for k in ("pii", "contains_pii") if k in col.meta and col.pii]
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
        seen, shares = value_shares(values)
        if not shares:
            continue
        kind, share = max(shares.items(), key=lambda kv: kv[1])
        if share >= policy["min_match_share"]:
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
