"""Drift detection: `dwml drift NAME [--version N | --alias A] [--relation R] [--after D] [--before D]`.

The version's reference profile (dwml.reference_profiles, stored at training time) is compared
with a current relation (the version's feature model unless told otherwise, optionally limited to
a window on the model's timestamp column: `ts >= after` and `ts < before`). Only counts leave the
warehouse:

* **one** query for every numeric feature: per feature and per stored bin
  `sum(CASE WHEN x > c(i-1) AND x <= c(i) THEN 1 ELSE 0 END)` against the stored right-closed cut
  points, its NULL count, plus the total row count;
* **one** GROUPING SETS query for every categorical feature: each value is mapped in SQL to the
  index of its reference category, -1 for NULL and -2 for a value the reference never saw (or to
  the index of `__other__` when the reference folded its rare values into it), and grouped per
  feature, so at most 53 small rows per feature come back.

In DuckDB both are one scan instead (`duckdb_counts_query`, chosen by `warehouse.dialect`):
cumulative `COUNT_IF(x <= c(i))` per cut, the bins being their differences, and a `HISTOGRAM` of
each categorical code found by `LIST_POSITION`; the counts are the same as the portable queries'.

Statistics (the pure functions of `dwml_py.drift_stats`, on the same bins):

* numeric: `psi`, `ks`, `wasserstein_norm`, `missing_rate_change`;
* categorical: `psi` and `js_distance` over the reference categories (+ an "unseen" bin when the
  current data has values the reference never saw), `unseen_share`, `missing_rate_change`;
* the score (`__score__`): `psi` and `ks` of the scores in dwml.predictions for the model version
  (its latest batch; the same window on snapshot_at when one is given), skipped with a note when
  there are none.

Support points of the Wasserstein distance: each bin is placed at a representative value: the
midpoint of its two cuts for inner bins; the open outer bins at one half of the neighbouring
bin's width beyond the outer cut (`c0 - (c1 - c0) / 2` and `ck + (ck - c(k-1)) / 2`). With a single
cut (e.g. a 0/1 column) the two bins lie at `c0 -/+ std / 2` (the reference std, 1 when it is
0 or unknown), so the normalised distance is the shift of share between the two bins. The
distance is divided by the reference's standard deviation.

Thresholds (a statistic crosses when value >= threshold; documented defaults after common practice):

==================== ========= =====================================================
statistic            default   note
==================== ========= =====================================================
psi                  0.1       moderate; `psi_major` 0.25 major
js_distance          0.1       base-2 Jensen-Shannon distance, in [0, 1]
wasserstein_norm     0.1       Wasserstein-1 / reference std
ks                   0.1       binned KS (a lower bound of the exact statistic)
unseen_share         0.05      share of current rows with a category never seen
missing_rate_change  0.05      absolute change of the missing rate
drift_share          0.3       dataset drift when this share of features drift
==================== ========= =====================================================

Override them in dbt_project.yml `vars: dwml: drift: {psi: 0.2, ..., features: {col: {psi: 0.3}}}`
and in the feature model's `meta: dwml: drift:` (same shape; meta wins over vars, a per-feature
value over both). A feature drifts when one of its *primary* statistics (psi, js_distance,
wasserstein_norm) crosses; the others are recorded with their own verdict but do not make the
feature drift. Severity: `major` when psi >= psi_major, otherwise `moderate` when crossed.

Every row goes to dwml.drift_metrics under one drift_run_id; the result's `alert` is true when
the dataset drifts or the score's psi crosses (the CLI then exits 2).
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime

from sqlglot import exp

from dwml_py import drift_stats as stats
from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, InputError
from dwml_py.reference_profile import OTHER_CATEGORY
from dwml_py.settings import meta_section, project_var
from dwml_py.tables import DATASET_FEATURE, DWML_SCHEMA, PRIMARY_STATISTICS, SCORE_FEATURE

DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.1, "psi_major": 0.25, "js_distance": 0.1, "wasserstein_norm": 0.1, "ks": 0.1,
    "unseen_share": 0.05, "missing_rate_change": 0.05, "drift_share": 0.3,
}
_SEVERITY_ORDER = {"none": 0, "moderate": 1, "major": 2}
MISSING_CODE, UNSEEN_CODE = -1, -2


# -- thresholds ---------------------------------------------------------------------------------

def _threshold_block(config, where: str) -> tuple[dict, dict]:
    if config is None:
        return {}, {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where} must be a mapping, got {config!r}.", hint="e.g. `drift: {psi: 0.2}`.")
    values, features = {}, {}
    for key, value in config.items():
        if key == "features":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.features must map feature names to thresholds, got {value!r}.",
                                  hint="e.g. `features: {monthly_price: {psi: 0.3}}`.")
            for feature, block in value.items():
                features[str(feature)] = _threshold_block(block, f"{where}.features.{feature}")[0]
            continue
        if key not in DEFAULT_THRESHOLDS:
            from dwml_py.errors import did_you_mean
            raise ConfigError(f"Unknown drift threshold {key!r} in {where}.",
                              hint=f"{did_you_mean(str(key), DEFAULT_THRESHOLDS)} (known: "
                              f"{', '.join(DEFAULT_THRESHOLDS)}, features)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"Drift threshold {key!r} in {where} must be a number >= 0, got {value!r}.",
                              hint=f"the default is {DEFAULT_THRESHOLDS[key]}.")
        values[key] = float(value)
    return values, features


def resolve_thresholds(project_config: dict | None, model_meta: dict | None) -> tuple[dict, dict]:
    """(global thresholds, {feature: thresholds}) from defaults < vars dwml.drift < meta.dwml.drift.

    >>> g, f = resolve_thresholds({"vars": {"dwml": {"drift": {"psi": 0.2}}}},
    ...                           {"dwml": {"drift": {"features": {"x": {"js_distance": 0.3}}}}})
    >>> g["psi"], g["ks"], f["x"]["js_distance"], f["x"]["psi"]
    (0.2, 0.1, 0.3, 0.2)
    """
    v_values, v_features = _threshold_block(project_var(project_config, "drift"), "vars: dwml: drift:")
    m_values, m_features = _threshold_block(meta_section(model_meta, "drift"), "meta.dwml.drift")
    base = {**DEFAULT_THRESHOLDS, **v_values, **m_values}
    per_feature = {}
    for name in set(v_features) | set(m_features):
        per_feature[name] = {**base, **v_features.get(name, {}), **m_features.get(name, {})}
    return base, per_feature


# -- SQL ------------------------------------------------------------------------------------------

def _one_if(condition: exp.Expression) -> exp.Expression:
    return exp.func("sum", exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                                    default=exp.Literal.number(0)))


def _double(value: float) -> exp.Expression:
    return exp.cast(exp.Literal.number(repr(float(value))), exp.DataType.Type.DOUBLE, copy=False)


def bin_conditions(value: exp.Expression, cuts: list[float]) -> list[exp.Expression]:
    """One condition per right-closed bin: `x <= c0`, `x > c0 AND x <= c1`, ..., `x > c(last)`."""
    if not cuts:
        return [exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))]
    conditions = []
    for i in range(len(cuts) + 1):
        parts = []
        if i > 0:
            parts.append(exp.GT(this=value.copy(), expression=_double(cuts[i - 1])))
        if i < len(cuts):
            parts.append(exp.LTE(this=value.copy(), expression=_double(cuts[i])))
        conditions.append(exp.and_(*parts) if len(parts) > 1 else parts[0])
    return conditions


def numeric_counts_query(source: exp.Table, features: list[tuple[str, list[float]]],
                         where: exp.Expression | None = None, booleans: frozenset[str] = frozenset()) -> exp.Select:
    """One query: `n` (rows), then per feature k `f{k}_missing` and `f{k}_b{i}` per bin.

    Aliases are positional so no column name enters them; values are compared as DOUBLE.
    Columns in `booleans` go through INT first: Postgres casts BOOLEAN to INT, not to DOUBLE.
    """
    selects = [exp.alias_(exp.func("count", exp.Star()), "n", quoted=True)]
    for k, (name, cuts) in enumerate(features):
        value = sqlmod.column(name)
        if name in booleans:
            value = exp.cast(value, exp.DataType.Type.INT)
        # NaN is missing, as in training and in the reference profile. NULLIF(x, NaN) is NULL for
        # NaN because DuckDB, Postgres and Spark treat NaN as equal to itself; it also keeps NaN
        # out of the top bin, where those engines would sort it.
        value = exp.Nullif(this=exp.cast(value, exp.DataType.Type.DOUBLE),
                           expression=exp.cast(exp.Literal.string("NaN"), exp.DataType.Type.DOUBLE))
        selects.append(exp.alias_(_one_if(exp.Is(this=value, expression=exp.Null())), f"f{k}_missing", quoted=True))
        for i, condition in enumerate(bin_conditions(value, cuts)):
            selects.append(exp.alias_(_one_if(condition), f"f{k}_b{i}", quoted=True))
    query = exp.select(*selects).from_(source)
    return query.where(where) if where is not None else query


def _category_code(name: str, categories: list[str]) -> exp.Expression:
    column = sqlmod.column(name)
    text = exp.cast(sqlmod.column(name), exp.DataType.Type.VARCHAR)
    ifs = [exp.If(this=exp.Is(this=column, expression=exp.Null()), true=exp.Literal.number(MISSING_CODE))]
    other = None
    for i, category in enumerate(categories):
        if category == OTHER_CATEGORY and i == len(categories) - 1:
            other = i
            continue
        ifs.append(exp.If(this=text.copy().eq(sqlmod.literal(category)), true=exp.Literal.number(i)))
    default = exp.Literal.number(other if other is not None else UNSEEN_CODE)
    return exp.Case(ifs=ifs, default=default)


def categorical_counts_query(source: exp.Table, features: list[tuple[str, list[str]]],
                             where: exp.Expression | None = None) -> exp.Select:
    """One GROUPING SETS query: per feature k, rows (`c{k}` = category index, -1 NULL, -2 unseen; `n`)."""
    inner = exp.select(*[exp.alias_(_category_code(name, cats), f"c{k}", quoted=True)
                         for k, (name, cats) in enumerate(features)]).from_(source)
    if where is not None:
        inner = inner.where(where)
    codes = [exp.column(f"c{k}", quoted=True) for k in range(len(features))]
    group = exp.Group(expressions=[exp.GroupingSets(expressions=[exp.Paren(this=c.copy()) for c in codes])])
    query = exp.select(*[c.copy() for c in codes], exp.alias_(exp.func("count", exp.Star()), "n", quoted=True)) \
        .from_(inner.subquery("codes"))
    query.set("group", group)
    return query


# -- DuckDB fast path --------------------------------------------------------------------------------
# The portable queries above cost ~2 aggregates with 2 comparisons per bin per row (14x a full scan
# at 1M rows). In DuckDB one scan does it all with cheaper work, with counts identical to theirs:
# per numeric feature COUNT_IF(x <= c_i) per cut (cumulative: one comparison per cut) and the
# bins as differences, and per categorical feature a HISTOGRAM of its code from LIST_POSITION.

def _numeric_value(name: str, booleans: frozenset[str]) -> exp.Expression:
    value = sqlmod.column(name)
    if name in booleans:
        value = exp.cast(value, exp.DataType.Type.INT, copy=False)
    return exp.cast(value, exp.DataType.Type.DOUBLE, copy=False)


def _cumulative_ok(cuts: list[float]) -> bool:
    """Bins are differences of cumulative counts only when the cuts increase strictly (they do
    when dwml stored them; anything else keeps the portable query's meaning)."""
    return all(a < b for a, b in zip(cuts, cuts[1:]))


def _category_code_fast(name: str, categories: list[str]) -> exp.Expression:
    """The code of `_category_code` by one LIST_POSITION (first match, as the CASE's first WHEN)."""
    folded = bool(categories) and categories[-1] == OTHER_CATEGORY
    named = categories[:-1] if folded else categories
    default = exp.Literal.number(len(categories) - 1 if folded else UNSEEN_CODE)
    found = default
    if named:
        position = exp.func("list_position", exp.Array(expressions=[sqlmod.literal(c) for c in named]),
                            exp.cast(sqlmod.column(name), exp.DataType.Type.VARCHAR))
        found = exp.func("coalesce", exp.Sub(this=position, expression=exp.Literal.number(1)), default)
    return exp.Case(ifs=[exp.If(this=exp.Is(this=sqlmod.column(name), expression=exp.Null()),
                                true=exp.Literal.number(MISSING_CODE))], default=found)


def duckdb_counts_query(source: exp.Table, numeric: list[tuple[str, list[float]]],
                        categorical: list[tuple[str, list[str]]], where: exp.Expression | None = None,
                        booleans: frozenset[str] = frozenset()) -> exp.Select:
    """One DuckDB scan: `n`; per numeric feature k `f{k}_present` (non-missing) and `f{k}_le{i}`
    (rows <= cut i); per categorical feature k `c{k}` = HISTOGRAM(code). NaN is missing: it is in
    no `<=` count (DuckDB sorts NaN above every number) and NULLIF makes it uncounted as present.

    Every node is built fresh and handed over without copying: with ~200 counts, sqlglot's default
    deep copies cost more than DuckDB's scan of a million rows."""
    def alias(expression: exp.Expression, name: str) -> exp.Alias:
        return exp.Alias(this=expression, alias=exp.to_identifier(name, quoted=True))

    selects = [alias(exp.Count(this=exp.Star()), "n")]
    for k, (name, cuts) in enumerate(numeric):
        nan = exp.cast(exp.Literal.string("NaN"), exp.DataType.Type.DOUBLE, copy=False)
        selects.append(alias(exp.Count(this=exp.Nullif(this=_numeric_value(name, booleans), expression=nan)),
                             f"f{k}_present"))
        for i, cut in enumerate(cuts):
            selects.append(alias(exp.CountIf(this=exp.LTE(this=_numeric_value(name, booleans),
                                                          expression=_double(cut))), f"f{k}_le{i}"))
    for k, (name, categories) in enumerate(categorical):
        selects.append(alias(exp.func("histogram", _category_code_fast(name, categories)), f"c{k}"))
    query = exp.Select(expressions=selects).from_(source, copy=False)
    return query.where(where) if where is not None else query


def _fast(warehouse, numeric: list[tuple[str, list[float]]]) -> bool:
    return getattr(warehouse, "dialect", "") == "duckdb" and all(_cumulative_ok(cuts) for _, cuts in numeric)


def _histogram_items(value) -> list[tuple[int, int]]:
    if not value:  # NULL when no row matched
        return []
    return list(value.items()) if isinstance(value, dict) else [tuple(item) for item in value]


def _categorical_from_codes(features: list[tuple[str, list[str]]], coded) -> dict:
    """{feature: counts} from (k, code, n) triples: code -1 missing, -2 unseen, else the category."""
    out = {name: {"counts": [0] * len(cats), "missing": 0, "unseen": 0} for name, cats in features}
    for k, code, n in coded:
        entry = out[features[k][0]]
        if code == MISSING_CODE:
            entry["missing"] += n
        elif code == UNSEEN_CODE:
            entry["unseen"] += n
        else:
            entry["counts"][code] += n
    return out


def count_features(warehouse, source: exp.Table, numeric: list[tuple[str, list[float]]],
                   categorical: list[tuple[str, list[str]]], where: exp.Expression | None = None,
                   booleans: frozenset[str] = frozenset()) -> tuple[int, dict]:
    """(rows, {feature: counts}) of every feature: one scan in DuckDB, the two portable queries elsewhere."""
    if not _fast(warehouse, numeric):
        total, counts = count_numeric(warehouse, source, numeric, where, booleans)
        counts.update(count_categorical(warehouse, source, categorical, where))
        return total, counts
    row = warehouse.fetch_rows(duckdb_counts_query(source, numeric, categorical, where, booleans))[0]
    counts = {}
    for k, (name, cuts) in enumerate(numeric):
        present = int(row[f"f{k}_present"] or 0)
        below = [int(row[f"f{k}_le{i}"] or 0) for i in range(len(cuts))] + [present]
        counts[name] = {"counts": [b - a for a, b in zip([0] + below[:-1], below)],
                        "missing": int(row["n"] or 0) - present}
    coded = [(k, int(code), int(n)) for k in range(len(categorical))
             for code, n in _histogram_items(row[f"c{k}"])]
    counts.update(_categorical_from_codes(categorical, coded))
    return int(row["n"] or 0), counts


def count_numeric(warehouse, source: exp.Table, features: list[tuple[str, list[float]]],
                  where: exp.Expression | None = None, booleans: frozenset[str] = frozenset()) -> tuple[int, dict]:
    """(rows, {feature: {"counts": [...], "missing": n}}) from one query."""
    if _fast(warehouse, features):
        return count_features(warehouse, source, features, [], where, booleans)
    row = warehouse.fetch_rows(numeric_counts_query(source, features, where, booleans))[0]
    total = int(row["n"] or 0)
    out = {}
    for k, (name, cuts) in enumerate(features):
        bins = len(cuts) + 1
        out[name] = {"counts": [int(row[f"f{k}_b{i}"] or 0) for i in range(bins)],
                     "missing": int(row[f"f{k}_missing"] or 0)}
    return total, out


def count_categorical(warehouse, source: exp.Table, features: list[tuple[str, list[str]]],
                      where: exp.Expression | None = None) -> dict:
    """{feature: {"counts": [per reference category], "missing": n, "unseen": n}} from one query."""
    if not features:
        return _categorical_from_codes(features, [])
    if _fast(warehouse, []):
        return count_features(warehouse, source, [], features, where)[1]
    coded = []
    for row in warehouse.fetch_rows(categorical_counts_query(source, features, where)):
        k = next((k for k in range(len(features)) if row.get(f"c{k}") is not None), None)
        if k is not None:  # GROUPING SETS: one code is set per row
            coded.append((k, int(row[f"c{k}"]), int(row["n"] or 0)))
    return _categorical_from_codes(features, coded)


# -- statistics -----------------------------------------------------------------------------------

def support_points(cuts: list[float], reference_std: float | None) -> list[float]:
    """Representative value of each right-closed bin (see the module doc).

    >>> support_points([1.0, 2.0, 4.0], 1.0)
    [0.5, 1.5, 3.0, 5.0]
    >>> support_points([0.0], 0.5)
    [-0.25, 0.25]
    """
    if not cuts:
        return [0.0]
    if len(cuts) == 1:
        half = (reference_std if reference_std and math.isfinite(reference_std) and reference_std > 0 else 1.0) / 2
        return [cuts[0] - half, cuts[0] + half]
    points = [cuts[0] - (cuts[1] - cuts[0]) / 2]
    points += [(a + b) / 2 for a, b in zip(cuts[:-1], cuts[1:])]
    points.append(cuts[-1] + (cuts[-1] - cuts[-2]) / 2)
    return points


def _missing_change(reference: dict, missing: int, total: int) -> float | None:
    if not total or reference.get("missing_rate") is None:
        return None
    return abs(missing / total - float(reference["missing_rate"]))


def numeric_statistics(reference: dict, current: dict, total: int, score: bool = False) -> dict:
    """{statistic: value or None} of one numeric feature (or the score: psi and ks only)."""
    ref_counts = json.loads(reference["bin_counts"]) if isinstance(reference["bin_counts"], str) \
        else list(reference["bin_counts"] or [])
    cuts = json.loads(reference["bin_edges"]) if isinstance(reference["bin_edges"], str) \
        else list(reference["bin_edges"] or [])
    cur = current["counts"]
    out = {"psi": None, "ks": None}
    if not score:
        out["wasserstein_norm"] = None
    usable = sum(ref_counts) > 0 and sum(cur) > 0 and len(ref_counts) == len(cur)
    if usable:
        out["psi"] = stats.psi(ref_counts, cur)
        out["ks"] = stats.ks_statistic(ref_counts, cur)
        if not score:
            out["wasserstein_norm"] = stats.normalised_wasserstein(
                support_points(cuts, reference.get("std")), ref_counts, cur, reference.get("std"))
    if not score:
        out["missing_rate_change"] = _missing_change(reference, current["missing"], total)
    return out


def categorical_statistics(reference: dict, current: dict, total: int) -> dict:
    """{statistic: value or None} of one categorical feature; an unseen bin is added when needed."""
    ref_counts = json.loads(reference["bin_counts"]) if isinstance(reference["bin_counts"], str) \
        else list(reference["bin_counts"] or [])
    categories = json.loads(reference["categories"]) if isinstance(reference["categories"], str) \
        else list(reference["categories"] or [])
    cur = list(current["counts"])
    unseen = current["unseen"]
    present = sum(cur) + unseen
    out = {"psi": None, "js_distance": None, "unseen_share": None,
           "missing_rate_change": _missing_change(reference, current["missing"], total)}
    folded = bool(categories) and categories[-1] == OTHER_CATEGORY
    if present > 0:
        # with __other__, values beyond the top categories fold into it: unseen cannot be told apart
        out["unseen_share"] = None if folded else unseen / present
    if sum(ref_counts) > 0 and present > 0:
        ref = list(ref_counts) + ([0] if unseen else [])
        cur = cur + ([unseen] if unseen else [])
        out["psi"] = stats.psi(ref, cur)
        out["js_distance"] = stats.js_distance(ref, cur)
    return out


def judge(statistics: dict, thresholds: dict) -> tuple[list[dict], bool, str]:
    """(rows {statistic, value, threshold, is_drift, severity}, feature drifted, feature severity)."""
    rows, drifted, worst = [], False, "none"
    for name, value in statistics.items():
        threshold = thresholds[name]
        if value is None:
            rows.append({"statistic": name, "value": None, "threshold": threshold, "is_drift": None,
                         "severity": None})
            continue
        major = thresholds["psi_major"] if name == "psi" else None
        sev = stats.severity(value, threshold, major)
        crossed = sev != "none"
        rows.append({"statistic": name, "value": float(value), "threshold": threshold, "is_drift": crossed,
                     "severity": sev})
        if name in PRIMARY_STATISTICS and crossed:
            drifted = True
            if _SEVERITY_ORDER[sev] > _SEVERITY_ORDER[worst]:
                worst = sev
    return rows, drifted, worst


# -- the check -------------------------------------------------------------------------------------

def _parse_when(value, what: str) -> exp.Expression:
    if isinstance(value, datetime):
        return exp.cast(sqlmod.literal(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, date):
        return exp.cast(sqlmod.literal(value.isoformat()), exp.DataType.Type.DATE)
    text = str(value).strip()
    try:
        if len(text) == 10:
            return exp.cast(sqlmod.literal(date.fromisoformat(text).isoformat()), exp.DataType.Type.DATE)
        return exp.cast(sqlmod.literal(datetime.fromisoformat(text).isoformat(sep=" ")),
                        exp.DataType.Type.TIMESTAMP)
    except ValueError:
        raise InputError(f"{what} {value!r} is not an ISO date or timestamp.",
                         hint="e.g. --after 2025-06-01 or --before '2025-06-01 12:00:00'.") from None


def window_filter(column: str | None, after=None, before=None) -> exp.Expression | None:
    """`column >= after AND column < before` (either side optional); None without bounds."""
    if after is None and before is None:
        return None
    if not column:
        raise InputError("A time window needs the model's timestamp column, and this version records none.",
                         hint="drop --after/--before, or pass --relation with the rows to compare.")
    parts = []
    if after is not None:
        parts.append(exp.GTE(this=sqlmod.column(column), expression=_parse_when(after, "after")))
    if before is not None:
        parts.append(exp.LT(this=sqlmod.column(column), expression=_parse_when(before, "before")))
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def _window_text(after, before) -> str:
    if after is None and before is None:
        return "all rows"
    return f"[{after if after is not None else '-inf'}, {before if before is not None else '+inf'})"


def load_reference(warehouse, name: str, version: int) -> list[dict]:
    from dwml_py.rows import select_rows

    where = exp.and_(sqlmod.column("model_name").eq(sqlmod.literal(name)),
                     sqlmod.column("version").eq(sqlmod.literal(int(version))))
    rows = [r for r in select_rows(warehouse, "reference_profiles", where)]
    for row in rows:  # select_rows parses JSON; keep lists
        for key in ("bin_edges", "bin_counts", "categories"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return rows


def feature_meta(project, feature_model: str | None) -> tuple[dict, str | None]:
    """(meta of the feature model, or {} with a note when the manifest cannot be read)."""
    if not feature_model:
        return {}, None
    try:
        from dwml_py.catalog import Catalog

        catalog = Catalog.load(project)
        return dict(catalog.node(catalog.resolve(feature_model)).meta or {}), None
    except Exception as exc:  # noqa: BLE001 - the manifest is optional here: vars and defaults still apply
        return {}, f"meta.dwml of {feature_model} not read ({exc}); vars and defaults apply."


def _score_counts(warehouse, name: str, version: int, reference: dict, after, before) -> tuple[int, dict | None, str]:
    source = sqlmod.table(DWML_SCHEMA, "predictions")
    base = exp.and_(sqlmod.column("model_name").eq(sqlmod.literal(name)),
                    sqlmod.column("version").eq(sqlmod.literal(int(version))))
    if not warehouse.table_exists(DWML_SCHEMA, "predictions"):
        return 0, None, "no predictions table"
    latest = exp.select(sqlmod.column("batch_id")).from_(source).where(base) \
        .order_by(exp.Ordered(this=sqlmod.column("scored_at"), desc=True)).limit(1)
    batch = warehouse.fetch_scalar(latest)
    if batch is None:
        return 0, None, "no predictions of this version"
    where = exp.and_(base, sqlmod.column("batch_id").eq(sqlmod.literal(batch)))
    window = window_filter("snapshot_at", after, before)
    if window is not None:
        where = exp.and_(where, window)
    total, counts = count_numeric(warehouse, source, [("score", list(reference["bin_edges"] or []))], where)
    if total == 0:
        return 0, None, f"no predictions of batch {batch!r} in the window"
    return total, counts["score"], f"dwml.predictions batch {batch!r}, {_window_text(after, before)}"


def detect_drift(project, name: str, version: int | None = None, alias: str | None = "production",
                 relation: str | None = None, where_after=None, where_before=None, warehouse=None) -> dict:
    """Compare a relation (or window) with the version's training reference; see the module doc."""
    from dwml_py import model_registry as registry
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.batch_scoring import match_columns, resolve_scoring_relation
    from dwml_py.rows import ensure_once, table_rows, utcnow
    from dwml_py.warehouse import given_or_connected

    if version is not None:
        alias = None
    with given_or_connected(project, warehouse) as warehouse:
        ensure_once(warehouse)
        row = registry.get_version(warehouse, name, version=version, alias=alias)
        version = int(row["version"])
        reference = load_reference(warehouse, name, version)
        if not reference:
            raise InputError(f"Version {version} of {name!r} has no reference profile in "
                             f"{DWML_SCHEMA}.reference_profiles, so there is nothing to compare with.",
                             hint="versions trained with `dwml train` store one; retrain the model.")
        # the spec, not the model: loading the artifact cost most of a drift check
        spec = registry.version_spec(ArtifactStore.for_project(project), row)
        schema, table = resolve_scoring_relation(project, warehouse, spec, relation)
        relation_name = f"{schema}.{table}"
        timestamp = spec.get("timestamp")
        where = window_filter(timestamp, where_after, where_before)
        meta, meta_note = feature_meta(project, row.get("feature_model"))
        base, per_feature = resolve_thresholds(project.config, meta)
        notes = [meta_note] if meta_note else []

        features = [r for r in reference if r["feature"] != SCORE_FEATURE]
        column_types = warehouse.columns(schema, table)
        available = [c for c, _ in column_types]
        booleans = frozenset(c for c, t in column_types if str(t).lower() in {"boolean", "bool"})
        actual = dict(zip([r["feature"] for r in features],
                          match_columns(available, [r["feature"] for r in features], relation_name,
                                        f"{name} version {version}")))
        if timestamp and where is not None:
            timestamp_col = match_columns(available, [timestamp], relation_name, "the time window")[0]
            where = window_filter(timestamp_col, where_after, where_before)
        source = sqlmod.table(schema, table)
        numeric = [(actual[r["feature"]], list(r["bin_edges"] or [])) for r in features if r["kind"] != "categorical"]
        categorical = [(actual[r["feature"]], list(r["categories"] or [])) for r in features
                       if r["kind"] == "categorical"]
        total, counts = count_features(warehouse, source, numeric, categorical, where, booleans)
        if total == 0:
            raise InputError(f"{relation_name} has no rows in the window {_window_text(where_after, where_before)}.",
                             hint="widen the window (--after/--before) or pass another --relation.")

        drift_run_id = uuid.uuid4().hex
        computed_at = utcnow()
        reference_window = f"training run {row.get('run_id')}"
        window = _window_text(where_after, where_before)
        current_window = f"{relation_name}, {timestamp} in {window}" if where is not None else f"{relation_name}, all rows"
        out_rows, results = [], []

        def record(feature, judged, current_window=current_window):
            for r in judged:
                out_rows.append({"drift_run_id": drift_run_id, "model_name": name, "version": version,
                                 "feature": feature, **r, "reference_window": reference_window,
                                 "current_window": current_window, "computed_at": computed_at})

        for ref in features:
            feature = ref["feature"]
            thresholds = per_feature.get(feature, base)
            if ref["kind"] == "categorical":
                statistics = categorical_statistics(ref, counts[actual[feature]], total)
            else:
                statistics = numeric_statistics(ref, counts[actual[feature]], total)
            judged, drifted, sev = judge(statistics, thresholds)
            record(feature, judged)
            results.append({"feature": feature, "kind": ref["kind"], "drifted": drifted, "severity": sev,
                            "statistics": statistics})

        drifting = sum(r["drifted"] for r in results)
        share = drifting / len(results) if results else 0.0
        dataset_drift = bool(results) and share >= base["drift_share"]
        record(DATASET_FEATURE, [{"statistic": "drift_share", "value": share, "threshold": base["drift_share"],
                                  "is_drift": dataset_drift, "severity": "major" if dataset_drift else "none"}])

        score = None
        score_ref = next((r for r in reference if r["feature"] == SCORE_FEATURE), None)
        if score_ref is not None:
            score_total, score_counts, where_text = _score_counts(warehouse, name, version, score_ref,
                                                                  where_after, where_before)
            if score_counts is None:
                notes.append(f"score drift skipped: {where_text}.")
            else:
                statistics = numeric_statistics(score_ref, score_counts, score_total, score=True)
                judged, drifted, sev = judge(statistics, per_feature.get(SCORE_FEATURE, base))
                record(SCORE_FEATURE, judged, current_window=where_text)
                score = {"feature": SCORE_FEATURE, "kind": "score", "drifted": drifted, "severity": sev,
                         "statistics": statistics, "rows": score_total, "current_window": where_text}
        else:
            notes.append("score drift skipped: the reference has no score row.")

        with warehouse.transaction():
            warehouse.write_arrow(table_rows("drift_metrics", out_rows), DWML_SCHEMA, "drift_metrics")
        return {
            "drift_run_id": drift_run_id, "model_name": name, "version": version, "relation": relation_name,
            "window": {"column": timestamp if where is not None else None, "after": _iso(where_after),
                       "before": _iso(where_before), "rows": total},
            "reference_window": reference_window,
            "dataset": {"share": share, "drifting": drifting, "features": len(results),
                        "threshold": base["drift_share"], "is_drift": dataset_drift},
            "features": results, "score": score, "notes": notes,
            "alert": bool(dataset_drift or (score is not None and score["drifted"])),
        }


def _iso(value):
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)
