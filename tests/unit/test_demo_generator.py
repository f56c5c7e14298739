"""Unit tests of the demo warehouse generator (no dbt; DuckDB only for the shift check)."""

from __future__ import annotations

import dataclasses
import doctest
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dwml_py.demo import generator as gen
from dwml_py.demo.generator import (
    RAW_TABLES,
    SHIFT_START,
    SHIFTED_FEATURES,
    STABLE_FEATURES,
    DemoConfig,
    generate,
    validate_config,
)

SMALL = DemoConfig(customers=1_200, months=18, seed=7)


def collect(config: DemoConfig) -> dict[str, pa.Table]:
    parts: dict[str, list[pa.Table]] = {}
    for name, table in generate(config):
        parts.setdefault(name, []).append(table)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


@pytest.fixture(scope="module")
def small() -> dict[str, pa.Table]:
    return collect(SMALL)


@pytest.fixture(scope="module")
def small_with_defects() -> dict[str, pa.Table]:
    return collect(dataclasses.replace(SMALL, inject_defects=True))


def test_docstring_examples_run():
    assert doctest.testmod(gen, optionflags=doctest.ELLIPSIS).failed == 0


def test_every_chunk_matches_its_schema():
    seen = set()
    for name, table in generate(dataclasses.replace(SMALL, chunk_customers=500)):
        assert name in RAW_TABLES
        assert table.schema.equals(RAW_TABLES[name]), name
        seen.add(name)
    assert seen == set(RAW_TABLES)


def test_same_config_gives_identical_data(small):
    again = collect(SMALL)
    for name in RAW_TABLES:
        assert small[name].equals(again[name]), name


def test_other_seed_gives_other_data(small):
    other = collect(dataclasses.replace(SMALL, seed=8))
    assert not small["daily_usage"].equals(other["daily_usage"])


def test_data_does_not_depend_on_chunk_size(small):
    tiny_chunks = dataclasses.replace(SMALL, chunk_customers=1)
    sizes = [t.num_rows for name, t in generate(tiny_chunks) if name == "customers"]
    # chunks are whole blocks: memory is bounded by the block, not the whole population
    assert max(sizes) <= gen._BLOCK and len(sizes) == -(-SMALL.customers // gen._BLOCK)
    chunked = collect(tiny_chunks)
    for name in RAW_TABLES:
        assert small[name].equals(chunked[name]), name


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"customers": 10}, "customers", "between 50 and 50,000,000; got 10"),
        ({"customers": "100"}, "customers", "must be an integer"),
        ({"customers": True}, "customers", "must be an integer"),
        ({"months": 12}, "months", "between 18 and 120; got 12"),
        ({"months": 500}, "months", "between 18 and 120"),
        ({"seed": -1}, "seed", "between 0 and"),
        ({"chunk_customers": 0}, "chunk_customers", "between 1 and"),
        ({"start_date": date(2024, 1, 15)}, "start_date", "first day of a month"),
        ({"start_date": "2024-01-01"}, "start_date", "must be a datetime.date"),
        ({"inject_defects": "yes"}, "inject_defects", "True or False"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(change, field, expected):
    config = dataclasses.replace(DemoConfig(), **change)
    with pytest.raises(ValueError, match=f"DemoConfig.{field}") as err:
        validate_config(config)
    assert expected in str(err.value)
    with pytest.raises(ValueError):
        next(generate(config))


def test_default_config_is_valid_and_shift_start_matches():
    validate_config(DemoConfig())
    assert SHIFT_START == gen.shift_start(DemoConfig()) == date(2025, 8, 1)
    assert len(gen.snapshot_dates(DemoConfig())) == DemoConfig().months - 2
    assert set(SHIFTED_FEATURES).isdisjoint(STABLE_FEATURES)


def test_keys_are_unique_and_consistent(small):
    cust = small["customers"]["customer_id"]
    assert pc.count_distinct(cust).as_py() == cust.length()
    for table, key in (("subscriptions", "subscription_id"), ("payments", "payment_id"),
                       ("support_tickets", "ticket_id")):
        col = small[table][key]
        assert pc.count_distinct(col).as_py() == col.length(), table
    con = duckdb.connect()
    for name, table in small.items():
        con.register(name, table)
    orphans = con.sql("""
        select count(*) from (
            select customer_id from subscriptions union all select customer_id from payments
            union all select customer_id from daily_usage
            union all select customer_id from support_tickets
        ) x where customer_id not in (select customer_id from customers)""").fetchall()
    assert orphans == [(0,)]
    dup_days = con.sql("""select count(*) from (select customer_id, usage_date from daily_usage
                          group by all having count(*) > 1)""").fetchall()
    assert dup_days == [(0,)]
    # usage only while subscribed, payments only inside the observed window
    outside = con.sql("""
        select count(*) from daily_usage u join subscriptions s using (customer_id)
        where u.usage_date < cast(s.started_at as date)
           or u.usage_date >= coalesce(cast(s.cancelled_at as date), date '2100-01-01')
        """).fetchall()
    assert outside == [(0,)]
    bounds = con.sql("select min(paid_at)::date, max(paid_at)::date from payments").fetchall()
    assert bounds[0][0] >= SMALL.start_date
    assert bounds[0][1] < gen._add_months(SMALL.start_date, SMALL.months)


def test_data_is_realistically_messy(small):
    customers = small["customers"]
    n = customers.num_rows
    for column, low, high in (("acquisition_channel", 0.05, 0.2), ("birth_date", 0.04, 0.15),
                              ("city", 0.005, 0.05)):
        share = customers[column].null_count / n
        assert low < share < high, (column, share)
    assert pc.count_distinct(customers["city"]).as_py() > 300
    addons = small["payments"].filter(pc.equal(small["payments"]["payment_type"], "addon"))
    amounts = addons["amount"].to_numpy()
    assert np.mean(amounts) > 1.3 * np.median(amounts)  # right-skewed (lognormal)
    statuses = set(small["payments"]["status"].to_pylist())
    assert statuses == {"succeeded", "failed", "refunded"}
    prices = small["plan_prices"]
    # a real price history: one current price per plan and market, older ones closed
    assert prices["valid_to"].null_count == len(gen._PLANS) * len(gen._COUNTRIES)
    assert prices.num_rows > prices["valid_to"].null_count


def test_clean_data_has_no_planted_defects(small):
    assert small["payments"]["amount"].null_count == 0
    ids = small["customers"]["customer_id"]
    assert pc.count_distinct(ids).as_py() == len(ids)


def test_defects_only_when_asked(small, small_with_defects):
    bad = small_with_defects
    ids = bad["customers"]["customer_id"]
    duplicated = len(ids) - pc.count_distinct(ids).as_py()
    assert 0.003 * SMALL.customers < duplicated < 0.03 * SMALL.customers
    # the null spike sits in one month and hits a large share of it
    pay = bad["payments"]
    months = pc.strftime(pay["paid_at"], "%Y-%m").to_numpy(zero_copy_only=False)
    nulls = pay["amount"].is_null().to_numpy(zero_copy_only=False)
    spiky = sorted({m for m in months[nulls]})
    assert len(spiky) == 1 and nulls[months == spiky[0]].mean() > 0.2
    # everything else is the clean data, row for row
    for name in ("subscriptions", "daily_usage", "support_tickets", "plans", "plan_prices"):
        assert bad[name].equals(small[name]), name
    assert pay.drop_columns(["amount"]).equals(small["payments"].drop_columns(["amount"]))


# --- the distribution shift --------------------------------------------------------------
# A compact DuckDB version of the point-in-time features of models/demo/features, enough to
# check the shift without dbt.
_FEATURES_SQL = """
with cal as (select unnest($snapshots::date[]) as snapshot_date),
pop as (
    select s.customer_id, cal.snapshot_date, s.plan_id, upper(trim(c.country_code)) as country
    from subscriptions s join customers c using (customer_id) join cal
      on cast(s.started_at as date) < cal.snapshot_date
     and (s.cancelled_at is null or cast(s.cancelled_at as date) >= cal.snapshot_date)
),
u as (
    select u.customer_id, cal.snapshot_date,
           count(*) filter (where u.usage_date >= cal.snapshot_date - 30) as active_days_30d,
           sum(sessions) filter (where u.usage_date >= cal.snapshot_date - 30) as sessions_30d,
           sum(minutes) filter (where u.usage_date >= cal.snapshot_date - 30) as minutes_30d,
           sum(minutes) filter (where u.usage_date < cal.snapshot_date - 30
                                  and u.usage_date >= cal.snapshot_date - 60) as minutes_prev,
           min(cal.snapshot_date - u.usage_date) as days_since_last_activity
    from daily_usage u join cal
      on u.usage_date < cal.snapshot_date and u.usage_date >= cal.snapshot_date - 90
    group by all
),
p as (
    select p.customer_id, cal.snapshot_date,
           count(*) filter (where status = 'failed') as payment_failures_90d,
           sum(amount) filter (where status = 'succeeded') as payment_amount_90d,
           count(*) filter (where status = 'succeeded' and payment_type = 'addon')
               as addon_purchases_90d
    from payments p join cal
      on cast(p.paid_at as date) < cal.snapshot_date
     and cast(p.paid_at as date) >= cal.snapshot_date - 90
    group by all
),
t as (
    select t.customer_id, cal.snapshot_date, count(*) as tickets_90d,
           count(*) filter (where priority in ('high', 'urgent')) as high_priority_tickets_90d
    from support_tickets t join cal
      on cast(t.opened_at as date) < cal.snapshot_date
     and cast(t.opened_at as date) >= cal.snapshot_date - 90
    group by all
)
select pop.snapshot_date,
       pop.country as country_code,
       pr.monthly_price,
       c.acquisition_channel,
       floor(datediff('day', c.birth_date, pop.snapshot_date) / 365.25) as age_years,
       coalesce(active_days_30d, 0) as active_days_30d,
       coalesce(sessions_30d, 0) as sessions_30d,
       coalesce(minutes_30d, 0) as minutes_30d,
       minutes_30d / nullif(minutes_prev, 0) as usage_trend_30d,
       minutes_30d / nullif(sessions_30d, 0) as avg_session_minutes_30d,
       days_since_last_activity,
       coalesce(payment_failures_90d, 0) as payment_failures_90d,
       coalesce(payment_amount_90d, 0) as payment_amount_90d,
       coalesce(addon_purchases_90d, 0) as addon_purchases_90d,
       coalesce(tickets_90d, 0) as tickets_90d,
       coalesce(high_priority_tickets_90d, 0) as high_priority_tickets_90d
from pop join customers c using (customer_id)
left join plan_prices pr
  on pr.plan_id = pop.plan_id and pr.country_code = pop.country
 and pr.valid_from < pop.snapshot_date
 and (pr.valid_to is null or pr.valid_to >= pop.snapshot_date)
left join u using (customer_id, snapshot_date)
left join p using (customer_id, snapshot_date)
left join t using (customer_id, snapshot_date)
"""


def psi(expected: np.ndarray, actual: np.ndarray, side: str, bins: int = 10) -> float:
    """PSI over the expected sample's quantile bins (categories for strings)."""
    eps = 1e-4
    if expected.dtype.kind in "OUS":
        expected = expected[expected != None]  # noqa: E711
        actual = actual[actual != None]  # noqa: E711
        cats = sorted(set(expected) | set(actual))
        e = np.array([np.mean(expected == c) for c in cats])
        a = np.array([np.mean(actual == c) for c in cats])
    else:
        expected = expected[~np.isnan(expected)]
        actual = actual[~np.isnan(actual)]
        edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
        e = np.bincount(np.searchsorted(edges, expected, side), minlength=len(edges) + 1)
        a = np.bincount(np.searchsorted(edges, actual, side), minlength=len(edges) + 1)
        e, a = e / e.sum(), a / a.sum()
    e, a = np.clip(e, eps, None), np.clip(a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def test_shift_hits_the_shifted_features_and_spares_the_stable_ones():
    config = DemoConfig(customers=4_000, seed=3)
    data = collect(config)
    con = duckdb.connect()
    for name, table in data.items():
        con.register(name, table)
    snapshots = ", ".join(f"date '{d}'" for d in gen.snapshot_dates(config))
    features = con.sql(_FEATURES_SQL.replace("$snapshots::date[]", f"[{snapshots}]"))
    features = features.to_arrow_table()
    snap = features["snapshot_date"].to_numpy(zero_copy_only=False)
    early = snap < np.datetime64(gen.shift_event_date(config))
    late = snap >= np.datetime64(gen.shift_start(config))
    assert early.sum() > 5_000 and late.sum() > 3_000

    def column(name):
        col = features[name]
        if pa.types.is_string(col.type):
            return col.to_numpy(zero_copy_only=False).astype(object)
        return col.cast(pa.float64()).fill_null(np.nan).to_numpy()

    for name in SHIFTED_FEATURES:
        values = column(name)
        low = min(psi(values[early], values[late], side) for side in ("left", "right"))
        assert low > 0.25, (name, low)
    for name in STABLE_FEATURES:
        values = column(name)
        high = max(psi(values[early], values[late], side) for side in ("left", "right"))
        assert high < 0.1, (name, high)
