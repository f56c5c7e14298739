"""Target 2: profiling (`get_feature_stats`) <= 1.2x one full-scan aggregate of the same table."""

from __future__ import annotations

from benchmarks import data
from benchmarks.common import Figure, floor_query, hash_scan_query, spread, timed
from dwml_py import profiling
from dwml_py import sql as sqlmod
from dwml_py.warehouse.duckdb import DuckDBWarehouse

TABLE = "current"


def parts(warehouse, relation, specs, repeat: int) -> dict:
    """Seconds of each statement of a profile on its own: where the time goes."""
    main, _ = profiling.build_profile_query(relation, specs, "duckdb", approx_distinct=True, quantiles=())
    rows = warehouse.fetch_scalar(exp_count(relation))
    percent = 100.0 * profiling.QUANTILE_SAMPLE_ROWS / rows if rows > profiling.QUANTILE_SAMPLE_ROWS else None
    sampled, _ = profiling.build_quantile_query(relation, specs, "duckdb", profiling.DEFAULT_QUANTILES, percent)
    exact, _ = profiling.build_quantile_query(relation, specs, "duckdb", profiling.DEFAULT_QUANTILES, None)
    categorical = [s.name for s in specs if s.kind in ("string", "categorical")]
    queries = {
        "aggregates": main,
        "quantiles_sampled": sampled,
        "quantiles_exact": exact,
        "top_values": profiling.build_top_values_query(relation, categorical, 10),
        "duplicate_keys": profiling.build_duplicates_query(relation, [data.ENTITY]),
    }
    return {name: round(timed(lambda q=q: warehouse.fetch_rows(q), repeat)[0], 4) for name, q in queries.items()}


def exp_count(relation):
    from sqlglot import exp

    return exp.select(exp.Count(this=exp.Star())).from_(relation)


def run(ctx) -> list[Figure]:
    rows, repeat = ctx.rows, ctx.repeat
    relation = sqlmod.table("main", TABLE)
    with DuckDBWarehouse(str(ctx.db_path), read_only=True) as warehouse:
        floor_s, _, floor_runs = timed(lambda: warehouse.fetch_rows(
            floor_query(relation, data.NUMERIC, list(data.CATEGORICAL))), repeat)
        hash_s, _, _ = timed(lambda: warehouse.fetch_rows(
            hash_scan_query(relation, [data.ENTITY, *data.FEATURES])), repeat)
        profile_s, profile, profile_runs = timed(
            lambda: profiling.profile_relation(warehouse, "main", TABLE, entity_key=[data.ENTITY]), repeat)
        exact_s, _, _ = timed(lambda: profiling.profile_relation(warehouse, "main", TABLE, entity_key=[data.ENTITY],
                                                                exact=True), max(1, repeat - 1))
        specs = [profiling.classify(n, t, "duckdb") for n, t in warehouse.columns("main", TABLE)]
        breakdown = parts(warehouse, relation, specs, repeat)
    floor = "one full-scan aggregate (SUM of each numeric column, SUM(LENGTH()) of each string column)"
    return [
        Figure("profile", "profile_vs_floor", rows, "profile_relation (default: HLL distinct, sampled quantiles)",
               profile_s, floor, floor_s, target=1.2,
               notes=f"{profile.queries} statements; approximate quantiles: {profile.approximate_quantiles}",
               extra={"breakdown_s": breakdown, "noise": round(spread(profile_runs), 3),
                      "floor_noise": round(spread(floor_runs), 3)}),
        Figure("profile", "profile_exact_vs_floor", rows, "profile_relation(exact=True)", exact_s, floor, floor_s),
        Figure("profile", "hash_scan_vs_floor", rows, "SUM(HASH(all 25 columns)), for context", hash_s, floor, floor_s),
    ]
