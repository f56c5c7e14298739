"""Synthetic subscription business for the dwml demo warehouse.

The generator is pure: it yields Arrow tables and knows nothing about databases. A loader
appends every ``(table name, chunk)`` it yields to ``raw.<table name>``.

The world it simulates: a streaming-style subscription service with four plans. Customers
sign up over time (the simulation starts ``_HISTORY_MONTHS`` before ``start_date`` so the
customer base is close to a steady state when the observed window opens), use the product
on some days, pay monthly (some card payments fail and are retried), buy add-ons, open
support tickets and cancel. Activity tables (usage, payments, tickets) cover the observed
window ``[start_date, start_date + months)`` only; ``customers`` and ``subscriptions`` hold
every customer ever signed up, including those who left before the window.

Churn is driven by a latent monthly "health" (an AR(1) process that also drives usage and
tickets), unrecovered payment failures, tickets, tenure, price and acquisition channel, so a
model on point-in-time features finds real but imperfect signal.

From ``shift_start(config) - 1 month`` three things change at once, a real distribution
shift: two plans get a price increase, a new market (Brazil) launches, and a payment
processor migration raises the card failure rate. Usage and tickets keep their distribution.

Determinism: customers are simulated in blocks of ``_BLOCK`` customers, each with its own
``numpy.random.default_rng`` seeded from ``(seed, block index)``. A chunk is a run of whole
blocks, so the data does not depend on ``chunk_customers``: any chunk size yields the same
rows in the same order (only how they are split into chunks changes).

>>> from datetime import date
>>> cfg = DemoConfig(customers=100, months=18, start_date=date(2024, 1, 1))
>>> names = {name for name, _ in generate(cfg)}
>>> sorted(names) == sorted(RAW_TABLES)
True
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

__all__ = [
    "DemoConfig",
    "RAW_TABLES",
    "SHIFT_START",
    "SHIFTED_FEATURES",
    "STABLE_FEATURES",
    "generate",
    "shift_start",
    "shift_event_date",
    "snapshot_dates",
    "validate_config",
]


@dataclass(frozen=True)
class DemoConfig:
    """Size and shape of the demo warehouse.

    ``customers`` counts every customer ever signed up (the rows of ``raw.customers``); about a
    quarter of them are subscribed at any one time. At the default size, generating (4 s),
    loading into DuckDB (1 s) and ``dbt build`` (13 s) take about 20 s on 2 cores, which
    leaves room for the rest of the demo flow; time grows linearly with ``customers``.
    """

    customers: int = 50_000
    seed: int = 42
    months: int = 24
    start_date: datetime.date = date(2024, 1, 1)
    inject_defects: bool = False
    chunk_customers: int = 20_000


# --- limits checked by validate_config ---------------------------------------------------
MIN_CUSTOMERS = 50
MAX_CUSTOMERS = 50_000_000
MIN_MONTHS = 18
MAX_MONTHS = 120
MIN_START = date(1990, 1, 1)
MAX_START = date(2100, 1, 1)

# Customers per independently seeded block; chunks are whole blocks.
_BLOCK = 500
# Months simulated before start_date so that the customer base is near steady state.
_HISTORY_MONTHS = 48
# The shifted period is the last _SHIFT_SNAPSHOTS snapshots (the last snapshot, at the end
# of the window, has features but no labels yet).
_SHIFT_SNAPSHOTS = 6
# Ids of rows that belong to one customer: customer_id * _ID_STRIDE + sequence number.
_ID_STRIDE = 1000

# --- the catalogue of the business ---------------------------------------------------------
_PLANS = (
    # plan_id, code, name, tier, monthly price before / in window, after the shift increase
    (1, "basic", "Basic", 1, 8.99, 9.99, 12.99),
    (2, "standard", "Standard", 2, 16.99, 17.99, 22.99),
    (3, "premium", "Premium", 3, 29.99, 29.99, 29.99),
    (4, "family", "Family", 4, 39.99, 39.99, 39.99),
)
_PLAN_IDS = np.array([p[0] for p in _PLANS], dtype=np.int64)
_SHIFTED_PLAN = np.array([p[6] != p[5] for p in _PLANS])
_REPRICING_MONTHS_BEFORE_START = 14  # an old, pre-window price change (history in plan_prices)

_BASE_COUNTRIES = ("US", "GB", "DE", "FR", "NL")
_BASE_COUNTRY_P = np.array([0.40, 0.20, 0.15, 0.13, 0.12])
_NEW_MARKET = "BR"
_COUNTRIES = _BASE_COUNTRIES + (_NEW_MARKET,)
_NEW_MARKET_BOOST = 0.8  # extra signups after launch, relative to the base signup rate
_PHONE_PREFIX = {"US": "+1", "GB": "+44", "DE": "+49", "FR": "+33", "NL": "+31", "BR": "+55"}

# Market pricing: list prices (in USD) scale by market and end in .99, so monthly_price takes
# many values and a price increase moves it across quantile bins, whichever side they close.
_MARKET_PRICE_FACTOR = np.array([1.0, 1.12, 1.06, 1.04, 1.09, 0.5])
# Price grid [plan, market, period]; periods: [launch, repricing), [repricing, shift), [shift, ..)
_PRICE_GRID = (np.floor(np.array([[p[4], p[5], p[6]] for p in _PLANS])[:, None, :]
                        * _MARKET_PRICE_FACTOR[None, :, None]) + 0.99)

_CHANNELS = ("organic", "paid_search", "paid_social", "referral", "partner", "email")
_CHANNEL_P = np.array([0.30, 0.22, 0.18, 0.12, 0.08, 0.10])
_CHANNEL_CHURN = np.array([0.0, 0.1, 0.35, -0.35, -0.1, 0.05])
_CHANNEL_NULL_SHARE = 0.11
_BIRTH_DATE_NULL_SHARE = 0.08

_TICKET_CATEGORIES = ("technical", "billing", "account", "content", "cancellation")
_TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
_TICKET_CHANNELS = ("email", "chat", "phone")
_PAYMENT_STATUSES = ("succeeded", "failed", "refunded")
_PAYMENT_TYPES = ("subscription", "addon")
_PAYMENT_METHODS = ("card", "paypal", "sepa_debit", "pix")
_CANCEL_REASONS = ("too_expensive", "not_using", "payment_failed", "switched_service", "other")

# Vocabularies as "|"-separated strings (names may contain spaces).
_FIRST_NAMES = tuple((
    "Emma|Liam|Olivia|Noah|Ava|Lucas|Mia|Leon|Sofia|Mateo|Hannah|Louis|Chloe|Finn|Lea|Hugo|"
    "Julia|Daan|Anna|Gabriel|Laura|Arthur|Isabella|Oliver|Charlotte|Jack|Amelia|Harry|Emily|"
    "Paul|Marie|Jan|Sophie|Tom|Lotte|Miguel|Beatriz|Pedro|Ana|Rafael|Grace|Ethan|Zoe|Max|"
    "Clara|Elias|Nina|Samuel|Eva|Daniel|Sarah|David|Alice|Thomas|Maya|James|Ella|Felix|Ines|"
    "Victor"
).split("|"))
_LAST_NAMES = tuple((
    "Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Garcia|Wilson|Taylor|Evans|Walker|"
    "Wright|Roberts|Green|Mueller|Schmidt|Schneider|Fischer|Weber|Wagner|Becker|Hoffmann|"
    "Martin|Bernard|Dubois|Durand|Leroy|Moreau|Laurent|de Jong|Jansen|de Vries|van den Berg|"
    "Bakker|Visser|Smit|Meijer|Silva|Santos|Oliveira|Souza|Pereira|Costa|Almeida|Ferreira|"
    "Lima|Carvalho|Clark|Lewis|Hall|Young|King|Scott|Adams|Baker|Nelson|Hill|Campbell|"
    "Mitchell"
).split("|"))
_EMAIL_DOMAINS = tuple((
    "gmail.com|outlook.com|yahoo.com|icloud.com|proton.me|web.de|orange.fr|ziggo.nl|"
    "uol.com.br|hotmail.com"
).split("|"))

# City name = prefix + suffix, per country: hundreds of plausible names.
_CITY_PARTS = {
    "US": ("Spring|River|Oak|Maple|Cedar|Lake|Pine|Green|Fair|Clear|Mill|Ash|Bridge|Glen|Rock|"
           "Silver|Elm|Wood|Red|North|South|East|West|Hill|Brook|Stone|Fox|Bear",
           "field|ville|ton|port|wood|dale|view|ford|burg|haven|side|ridge|crest|land| Falls|"
           " City| Springs"),
    "GB": ("Ash|Brad|Chel|Dun|East|Frem|Glou|Hast|Kings|Lang|Mar|New|Old|Pen|Ross|Sand|Stan|"
           "Thorn|Wal|Wes",
           "ham|chester|bury|ford|wick|ton|ley|mouth|field|by|borough|stead"),
    "DE": ("Alt|Neu|Ober|Unter|Bad |Gross|Klein|Rot|Schwarz|Weiss|Linden|Eichen|Birken|Tann|Berg|"
           "Wald|Feld|Hoch|Mittel|Stein",
           "berg|dorf|hausen|heim|stadt|burg|feld|bach|au|ingen|hofen"),
    "FR": ("Saint-Jean|Mont|Beau|Ville|Château|Fontaine|Roche|Bourg|Val|Belle|Pont|Clair",
           "-sur-Loire|-la-Forêt|ville|mont|court|-les-Bains|fort|lieu|-en-Brie|-sur-Mer|"
           "-le-Vieux|bois"),
    "NL": ("Amster|Rotter|Zand|Vee|Hoog|Noord|Zuid|Oost|West|Groen|Bree|Lei|Dor|Har",
           "dam|wijk|hoven|drecht|veen|burg|horst|voort|loo"),
    "BR": ("São |Santa |Porto |Rio |Campo |Vila |Nova |Belo |Bom |Serra |Alto |Lagoa ",
           "Alegre|Verde|Grande|Bonito|Claro|Branco|Novo|Feliz|Formoso|Dourado|do Sul|da Serra|"
           "das Flores|do Norte|Azul"),
}
_CITIES_PER_COUNTRY = {"US": 220, "GB": 130, "DE": 120, "FR": 110, "NL": 70, "BR": 150}
_CITY_NULL_SHARE = 0.02

# --- the raw tables ----------------------------------------------------------------------
_TS = pa.timestamp("us")

RAW_TABLES: dict[str, pa.Schema] = {
    "customers": pa.schema([
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("full_name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("phone", pa.string()),
        pa.field("birth_date", pa.date32()),
        pa.field("country_code", pa.string()),
        pa.field("city", pa.string()),
        pa.field("acquisition_channel", pa.string()),
        pa.field("signup_date", pa.date32()),
        pa.field("marketing_opt_in", pa.bool_()),
    ]),
    "plans": pa.schema([
        pa.field("plan_id", pa.int64(), nullable=False),
        pa.field("plan_code", pa.string()),
        pa.field("plan_name", pa.string()),
        pa.field("tier", pa.int32()),
        pa.field("launched_on", pa.date32()),
    ]),
    "plan_prices": pa.schema([
        pa.field("plan_id", pa.int64(), nullable=False),
        pa.field("country_code", pa.string()),
        pa.field("monthly_price", pa.float64()),
        pa.field("currency", pa.string()),
        pa.field("valid_from", pa.date32()),
        pa.field("valid_to", pa.date32()),
    ]),
    "subscriptions": pa.schema([
        pa.field("subscription_id", pa.int64(), nullable=False),
        pa.field("customer_id", pa.int64()),
        pa.field("plan_id", pa.int64()),
        pa.field("started_at", _TS),
        pa.field("cancelled_at", _TS),
        pa.field("cancel_reason", pa.string()),
    ]),
    "daily_usage": pa.schema([
        pa.field("customer_id", pa.int64()),
        pa.field("usage_date", pa.date32()),
        pa.field("sessions", pa.int32()),
        pa.field("minutes", pa.float64()),
    ]),
    "payments": pa.schema([
        pa.field("payment_id", pa.int64(), nullable=False),
        pa.field("customer_id", pa.int64()),
        pa.field("subscription_id", pa.int64()),
        pa.field("paid_at", _TS),
        pa.field("amount", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("payment_type", pa.string()),
        pa.field("payment_method", pa.string()),
    ]),
    "support_tickets": pa.schema([
        pa.field("ticket_id", pa.int64(), nullable=False),
        pa.field("customer_id", pa.int64()),
        pa.field("opened_at", _TS),
        pa.field("closed_at", _TS),
        pa.field("category", pa.string()),
        pa.field("priority", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("satisfaction_score", pa.int32()),
    ]),
}


# --- calendar ------------------------------------------------------------------------------
def _add_months(d: date, n: int) -> date:
    """First day of the month ``n`` months after the month of ``d``."""
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def shift_start(config: DemoConfig) -> date:
    """First snapshot date of the shifted period: the last ``_SHIFT_SNAPSHOTS`` snapshots."""
    return _add_months(config.start_date, config.months - _SHIFT_SNAPSHOTS + 1)


def shift_event_date(config: DemoConfig) -> date:
    """Day the price increase, the new market and the payment migration take effect.

    One month before :func:`shift_start`, so the first shifted snapshot already sees it in
    data strictly before its date.
    """
    return _add_months(config.start_date, config.months - _SHIFT_SNAPSHOTS)


def snapshot_dates(config: DemoConfig) -> list[date]:
    """Monthly snapshot dates the demo feature model builds (3 months of history each).

    The last one is the end of the observed window: features, no matured labels.
    """
    return [_add_months(config.start_date, k) for k in range(3, config.months + 1)]


SHIFT_START: date = shift_start(DemoConfig())
"""First shifted snapshot for the default config (start 2024-01-01, 24 months)."""

SHIFTED_FEATURES: tuple[str, ...] = (
    "monthly_price",
    "country_code",
    "payment_failures_90d",
)
"""customer_features columns whose distribution shifts from SHIFT_START (PSI > 0.25).

``city``, ``payment_amount_90d`` and ``tenure_days`` move too, but are in neither list: the
new market's cities are each rare (top-k binning hides them), the amount collected rises with
the price but falls with the failures (PSI about 0.2-0.7 depending on the binning), and the
customer base ages slowly.
"""

STABLE_FEATURES: tuple[str, ...] = (
    "active_days_30d",
    "sessions_30d",
    "minutes_30d",
    "usage_trend_30d",
    "avg_session_minutes_30d",
    "days_since_last_activity",
    "tickets_90d",
    "high_priority_tickets_90d",
    "addon_purchases_90d",
    "age_years",
    "acquisition_channel",
)
"""customer_features columns whose distribution stays put across the window (PSI < 0.1)."""


# --- validation ----------------------------------------------------------------------------
def _check_int(name: str, value: object, low: int, high: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"DemoConfig.{name} must be an integer between {low:,} and {high:,}; "
            f"got {value!r} ({type(value).__name__}).{hint}"
        )
    if not low <= value <= high:
        raise ValueError(
            f"DemoConfig.{name} must be between {low:,} and {high:,}; got {value:,}.{hint}"
        )


def validate_config(config: DemoConfig) -> None:
    """Raise ValueError naming the field, the allowed range and the value received.

    >>> validate_config(DemoConfig(customers=10))
    Traceback (most recent call last):
    ...
    ValueError: DemoConfig.customers must be between 50 and 50,000,000; got 10. ...
    """
    if not isinstance(config, DemoConfig):
        raise ValueError(f"expected a DemoConfig, got {type(config).__name__}")
    _check_int("customers", config.customers, MIN_CUSTOMERS, MAX_CUSTOMERS,
               " Fewer customers leave too few churners per snapshot to train on.")
    _check_int("months", config.months, MIN_MONTHS, MAX_MONTHS,
               " The demo needs at least 18 monthly snapshots: 3 of history, a training"
               f" period and the last {_SHIFT_SNAPSHOTS} shifted ones.")
    _check_int("seed", config.seed, 0, 2**63 - 1)
    _check_int("chunk_customers", config.chunk_customers, 1, MAX_CUSTOMERS,
               f" Chunks are rounded up to whole blocks of {_BLOCK} customers.")
    start = config.start_date
    if not isinstance(start, date) or isinstance(start, datetime.datetime):
        raise ValueError(
            f"DemoConfig.start_date must be a datetime.date; got {start!r} "
            f"({type(start).__name__})."
        )
    if start.day != 1 or not MIN_START <= start < MAX_START:
        raise ValueError(
            f"DemoConfig.start_date must be the first day of a month between {MIN_START} and "
            f"{MAX_START}; got {start}. Try {date(start.year, start.month, 1)}."
        )
    if not isinstance(config.inject_defects, bool):
        raise ValueError(
            f"DemoConfig.inject_defects must be True or False; got {config.inject_defects!r}."
        )


# --- the simulation ------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


@dataclass(frozen=True)
class _World:
    """Everything derived from the config that all blocks share (no randomness)."""

    epoch: date                 # config.start_date; day offsets are relative to it
    month_start: np.ndarray     # day offset of month j's first day, j = 0.._J (one extra)
    n_months: int               # _J: simulated months, history included
    first_window_month: int     # index j of start_date
    window_days: int            # days in [start_date, end)
    event_day: int              # day offset of the shift events
    event_month: int            # index j of the shift events
    repricing_day: int
    defect_month: int           # index j of the null spike month

    @classmethod
    def build(cls, config: DemoConfig) -> _World:
        start = config.start_date
        ks = range(-_HISTORY_MONTHS, config.months + 1)
        month_start = np.array([(_add_months(start, k) - start).days for k in ks], np.int64)
        event = shift_event_date(config)
        return cls(
            epoch=start,
            month_start=month_start,
            n_months=len(month_start) - 1,
            first_window_month=_HISTORY_MONTHS,
            window_days=int(month_start[-1]),
            event_day=(event - start).days,
            event_month=_HISTORY_MONTHS + config.months - _SHIFT_SNAPSHOTS,
            repricing_day=(_add_months(start, -_REPRICING_MONTHS_BEFORE_START) - start).days,
            defect_month=_HISTORY_MONTHS + config.months - 3,
        )

    def price(self, plan_idx: np.ndarray, country_idx: np.ndarray, day) -> np.ndarray:
        day = np.asarray(day)
        period = (day >= self.repricing_day).astype(np.int64) + (day >= self.event_day)
        return _PRICE_GRID[plan_idx, country_idx, period]


_CITY_VOCAB: dict[str, np.ndarray] = {}
_CITY_WEIGHTS: dict[str, np.ndarray] = {}


def _city_vocabulary() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fixed synthetic city names per country with Zipf-like popularity (seed-independent)."""
    if not _CITY_VOCAB:
        rng = np.random.default_rng(20240101)
        for country, (prefixes, suffixes) in _CITY_PARTS.items():
            names = np.array([p + s for p in prefixes.split("|") for s in suffixes.split("|")],
                             dtype=object)
            pick = rng.permutation(len(names))[: _CITIES_PER_COUNTRY[country]]
            weights = 1.0 / np.arange(1, len(pick) + 1) ** 1.05
            _CITY_VOCAB[country] = names[pick]
            _CITY_WEIGHTS[country] = weights / weights.sum()
    return _CITY_VOCAB, _CITY_WEIGHTS


def _days_to_date32(world: _World, days: np.ndarray, mask=None) -> pa.Array:
    base = (world.epoch - date(1970, 1, 1)).days
    return pa.array((days + base).astype(np.int32), type=pa.date32(), mask=mask)


def _to_ts(world: _World, days: np.ndarray, seconds: np.ndarray, mask=None) -> pa.Array:
    base = (world.epoch - date(1970, 1, 1)).days
    us = (days.astype(np.int64) + base) * 86_400_000_000 + seconds.astype(np.int64) * 1_000_000
    return pa.array(us, type=_TS, mask=mask)


def _choice_strings(values: tuple[str, ...], idx: np.ndarray, mask=None) -> pa.Array:
    """Strings from a small vocabulary by index, via a dictionary array (fast)."""
    dictionary = pa.array(values, type=pa.string())
    indices = pa.array(idx.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


def _seq_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2... within runs of equal values of a sorted array."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    run_id = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    return np.arange(n) - starts[run_id]


def _simulate_block(config: DemoConfig, world: _World, block: int) -> dict[str, pa.Table]:
    """Simulate the customers of one block; returns one table per raw table."""
    first = block * _BLOCK
    n = min(_BLOCK, config.customers - first)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, block]))
    # defects draw from their own stream so that clean data is identical with or without them
    defect_rng = (np.random.default_rng(np.random.SeedSequence([config.seed, block, 1]))
                  if config.inject_defects else None)
    ms = world.month_start
    J = world.n_months
    t0 = int(ms[0])
    D = world.window_days
    customer_id = np.arange(first + 1, first + n + 1, dtype=np.int64)

    # --- who signs up when, and where ---------------------------------------------------
    base_mass = D - t0
    extra_mass = _NEW_MARKET_BOOST * (D - world.event_day)
    u = rng.random(n) * (base_mass + extra_mass)
    new_market = u >= base_mass
    signup = np.where(new_market, world.event_day + (u - base_mass) / _NEW_MARKET_BOOST,
                      t0 + u).astype(np.int64)
    signup = np.minimum(signup, D - 1)
    country_idx = np.where(new_market, len(_BASE_COUNTRIES),
                           rng.choice(len(_BASE_COUNTRIES), n, p=_BASE_COUNTRY_P))

    # --- latent traits ------------------------------------------------------------------
    engagement = rng.normal(0.0, 1.0, n)
    pay_risk = rng.normal(0.0, 1.0, n) + 0.4 * new_market
    addon_p = _sigmoid(-2.2 + 0.5 * engagement + rng.normal(0, 0.7, n))
    channel_idx = rng.choice(len(_CHANNELS), n, p=_CHANNEL_P)
    channel_missing = rng.random(n) < _CHANNEL_NULL_SHARE
    plan_logits = np.stack([np.zeros(n), 0.3 * engagement, 0.6 * engagement - 0.6,
                            0.4 * engagement - 1.2], axis=1) + rng.gumbel(size=(n, 4))
    plan_idx = plan_logits.argmax(axis=1)
    billing_dom = np.minimum(rng.integers(1, 32, n), 28)  # billing day of month

    # --- month by month: health, payments, tickets, churn ------------------------------
    rho, sigma_h = 0.8, 1.0
    health = np.empty((n, J))
    health[:, 0] = rng.normal(0, sigma_h, n)
    innov = rng.normal(0, sigma_h * np.sqrt(1 - rho**2), (n, J))
    for j in range(1, J):
        health[:, j] = rho * health[:, j - 1] + innov[:, j]

    INF = np.iinfo(np.int64).max // 4
    cancel = np.full(n, INF, np.int64)
    cancel_reason = np.full(n, -1, np.int64)
    pay_day = np.full((n, J), -1, np.int64)        # first attempt day, -1: none this month
    fails = np.zeros((n, J), np.int8)              # failed attempts (0..3)
    unrecovered = np.zeros((n, J), bool)
    tickets = np.zeros((n, J), np.int64)
    shocked_plan = _SHIFTED_PLAN[plan_idx]
    chan_effect = np.where(channel_missing, 0.0, _CHANNEL_CHURN[channel_idx])
    base_fail = _logit(0.06)
    fail_u = rng.random((n, J, 3))
    hazard_u = rng.random((n, J))
    cancel_frac = rng.random(n)

    for j in range(J):
        m0, m1 = ms[j], ms[j + 1]
        alive_before = (signup < m0) & (cancel == INF)
        # churn decision for this month (customers who joined in an earlier month)
        if j > 0:
            recent_fail = fails[:, max(0, j - 3):j].sum(axis=1)
            recent_tickets = np.minimum(tickets[:, max(0, j - 3):j].sum(axis=1), 4)
            tenure_m = (m0 - signup) / 30.4
            price_now = world.price(plan_idx, country_idx, m0)
            shock = shocked_plan & (j >= world.event_month) & (j < world.event_month + 4)
            z = (
                -3.75
                - 0.85 * health[:, j]
                - 0.45 * engagement
                + 2.0 * unrecovered[:, j - 1]
                + 0.25 * recent_fail
                + 0.3 * recent_tickets
                + 0.8 * (tenure_m < 3) + 0.35 * (tenure_m < 6) - 0.25 * (tenure_m > 24)
                + 0.03 * (price_now - 18.0)
                + 0.8 * shock
                + chan_effect
                + 0.15 * new_market
            )
            churn = alive_before & (hazard_u[:, j] < _sigmoid(z))
            if churn.any():
                idx = np.flatnonzero(churn)
                cancel[idx] = m0 + (cancel_frac[idx] * (m1 - m0)).astype(np.int64)
                reason = np.where(unrecovered[idx, j - 1], 2,
                                  np.where(shock[idx] | (price_now[idx] > 30), 0,
                                           np.where(health[idx, j] < -0.5, 1,
                                                    rng.choice([1, 3, 4], len(idx)))))
                cancel_reason[idx] = reason
        # payments: first payment at signup, then on the billing day of each month
        bill = m0 + billing_dom - 1
        joins_now = (signup >= m0) & (signup < m1)
        day = np.where(joins_now, signup, bill)
        pays = (joins_now | alive_before) & (day < cancel)
        p_fail = _sigmoid(base_fail + 0.7 * pay_risk + 1.9 * (m0 >= world.event_day))
        f1 = pays & (fail_u[:, j, 0] < p_fail)
        f2 = f1 & (fail_u[:, j, 1] < 0.45) & (day + 3 < cancel)
        f3 = f2 & (fail_u[:, j, 2] < 0.55) & (day + 7 < cancel)
        pay_day[:, j] = np.where(pays, day, -1)
        fails[:, j] = f1.astype(np.int8) + f2 + f3
        unrecovered[:, j] = f3 | (f2 & ~(day + 7 < cancel))
        # tickets: more when health is low and after failed payments
        alive_share = np.clip((np.minimum(cancel, m1) - np.maximum(signup, m0)) / (m1 - m0), 0, 1)
        rate = alive_share * 0.11 * np.exp(-0.45 * health[:, j] + 1.0 * f1)
        tickets[:, j] = rng.poisson(rate)

    out: dict[str, dict] = {}
    w = world.first_window_month

    # --- customers ------------------------------------------------------------------------
    vocab, weights = _city_vocabulary()
    city = np.empty(n, dtype=object)
    for c, code in enumerate(_COUNTRIES):
        sel = np.flatnonzero(country_idx == c)
        if len(sel):
            city[sel] = rng.choice(vocab[code], len(sel), p=weights[code])
    messy_city = rng.random(n) < 0.03
    city[messy_city] = np.char.add(city[messy_city].astype(str), " ").astype(object)
    city_missing = rng.random(n) < _CITY_NULL_SHARE
    first_i = rng.integers(0, len(_FIRST_NAMES), n)
    last_i = rng.integers(0, len(_LAST_NAMES), n)
    first_names = np.array(_FIRST_NAMES, dtype=object)[first_i]
    last_names = np.array(_LAST_NAMES, dtype=object)[last_i]
    full_name = first_names + " " + last_names
    local = (np.char.lower(first_names.astype(str)) + "."
             + np.char.replace(np.char.lower(last_names.astype(str)), " ", ""))
    email = (local.astype(object) + customer_id.astype(str).astype(object) + "@"
             + np.array(_EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(_EMAIL_DOMAINS), n)])
    shouty = rng.random(n) < 0.04
    email[shouty] = np.char.upper(email[shouty].astype(str)).astype(object)
    country_codes = np.array(_COUNTRIES, dtype=object)[country_idx]
    phone = (np.array([_PHONE_PREFIX[c] for c in _COUNTRIES], dtype=object)[country_idx] + " "
             + np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9).astype(object))
    lower_cc = rng.random(n) < 0.02
    country_codes[lower_cc] = np.char.lower(country_codes[lower_cc].astype(str)).astype(object)
    age_at_signup = np.clip(rng.normal(37, 12, n), 18, 85)
    birth = signup - (age_at_signup * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    birth_missing = rng.random(n) < _BIRTH_DATE_NULL_SHARE
    out["customers"] = {
        "customer_id": pa.array(customer_id),
        "full_name": pa.array(full_name, pa.string()),
        "email": pa.array(email, pa.string()),
        "phone": pa.array(phone, pa.string()),
        "birth_date": _days_to_date32(world, birth, mask=birth_missing),
        "country_code": pa.array(country_codes, pa.string()),
        "city": pa.array(city, pa.string(), mask=city_missing),
        "acquisition_channel": _choice_strings(_CHANNELS, channel_idx, mask=channel_missing),
        "signup_date": _days_to_date32(world, signup),
        "marketing_opt_in": pa.array(rng.random(n) < 0.55),
    }

    # --- subscriptions --------------------------------------------------------------------
    cancelled = cancel < D
    # cancellations after the window are not known yet: the subscription is still active
    cancel_reason = np.where(cancelled, cancel_reason, -1)
    reason_missing = (cancel_reason < 0) | (rng.random(n) < 0.1)
    start_secs = rng.integers(6 * 3600, 23 * 3600, n)
    cancel_secs = rng.integers(0, 86_400, n)
    out["subscriptions"] = {
        "subscription_id": pa.array(customer_id * 10 + 1),
        "customer_id": pa.array(customer_id),
        "plan_id": pa.array(_PLAN_IDS[plan_idx]),
        "started_at": _to_ts(world, signup, start_secs),
        "cancelled_at": _to_ts(world, np.where(cancelled, cancel, 0), cancel_secs,
                               mask=~cancelled),
        "cancel_reason": _choice_strings(_CANCEL_REASONS, np.maximum(cancel_reason, 0),
                                         mask=reason_missing),
    }

    # --- daily usage (window only) --------------------------------------------------------
    days = np.arange(D)
    day_month = np.searchsorted(ms, days, side="right") - 1
    alive = (days[None, :] >= signup[:, None]) & (days[None, :] < cancel[:, None])
    # only customers alive at some point in the window need the (n x D) work
    rows = np.flatnonzero(alive.any(axis=1))
    usage_cols = _usage_rows(rng, world, rows, alive[rows], health[rows][:, day_month],
                             engagement[rows], cancel[rows], days)
    usage_cols["customer_id"] = customer_id[usage_cols.pop("row")]
    out["daily_usage"] = usage_cols

    # --- payments (window only) -----------------------------------------------------------
    out["payments"] = _payment_rows(rng, world, customer_id, plan_idx, country_idx,
                                    pay_day[:, w:], fails[:, w:], addon_p, signup, cancel,
                                    defect_rng)

    # --- support tickets (window only) ---------------------------------------------------
    out["support_tickets"] = _ticket_rows(rng, world, customer_id, tickets[:, w:],
                                          health[:, w:], fails[:, w:], signup, cancel,
                                          cancel_reason, cancelled)
    tables = {name: pa.table(cols, schema=RAW_TABLES[name]) for name, cols in out.items()}
    if defect_rng is not None:
        tables["customers"] = _duplicate_some(tables["customers"], defect_rng)
    return tables


def _usage_rows(rng, world, rows, alive, health_daily, engagement, cancel, days):
    dow = (days + world.epoch.weekday()) % 7
    weekend = (dow >= 5).astype(float)
    to_cancel = cancel[:, None] - days[None, :]
    fading = (to_cancel > 0) & (to_cancel <= 21)
    logit_p = (0.1 + 0.9 * engagement[:, None] + 0.8 * health_daily + 0.35 * weekend[None, :]
               - 1.0 * fading)
    active = alive & (rng.random(alive.shape) < _sigmoid(logit_p))
    r, d = np.nonzero(active)
    lam = np.exp(0.2 + 0.35 * engagement[r] + 0.2 * health_daily[r, d])
    sessions = 1 + rng.poisson(lam)
    minutes = np.round(sessions * rng.gamma(2.0, np.exp(2.3 + 0.15 * engagement[r]) / 2.0),
                       1)
    return {
        "row": rows[r],
        "usage_date": _days_to_date32(world, d),
        "sessions": pa.array(sessions.astype(np.int32)),
        "minutes": pa.array(minutes),
    }


def _payment_rows(rng, world, customer_id, plan_idx, country_idx, pay_day, fails,
                  addon_p, signup, cancel, defect_rng):
    n, M = pay_day.shape
    D = world.window_days
    r, m = np.nonzero(pay_day >= 0)
    day0 = pay_day[r, m]
    k = fails[r, m].astype(np.int64)
    # attempts: 1 + number of retries; attempt a fails iff a < k (k failed attempts)
    n_att = np.minimum(k + 1, 3)
    rep = np.repeat(np.arange(len(r)), n_att)
    att = _seq_within(rep)
    att_day = day0[rep] + np.array([0, 3, 7])[att]
    att_failed = att < k[rep]
    sub_amount = world.price(plan_idx[r[rep]], country_idx[r[rep]], att_day)
    sub_cust = r[rep]
    # add-ons: at most one a month, lognormal amounts
    ms_w = world.month_start[world.first_window_month:]
    am_r, am_m = np.nonzero(rng.random((n, M)) < addon_p[:, None])
    am_day = ms_w[am_m] + rng.integers(0, 28, len(am_r))
    ok = (am_day >= signup[am_r]) & (am_day < cancel[am_r])
    am_r, am_day = am_r[ok], am_day[ok]
    am_amount = np.round(np.exp(rng.normal(2.3, 0.9, len(am_r))), 2)

    cust = np.r_[sub_cust, am_r]
    day = np.r_[att_day, am_day]
    amount = np.r_[sub_amount, am_amount]
    status = np.r_[np.where(att_failed, 1, 0), np.zeros(len(am_r), np.int64)]
    refund = (status == 0) & (rng.random(len(status)) < 0.01)
    status = np.where(refund, 2, status)
    ptype = np.r_[np.zeros(len(sub_cust), np.int64), np.ones(len(am_r), np.int64)]
    secs = rng.integers(0, 86_400, len(cust))
    keep = day < D
    order = np.lexsort((secs[keep], day[keep], cust[keep]))
    cust, day, amount, status, ptype, secs = (a[keep][order] for a in
                                              (cust, day, amount, status, ptype, secs))
    is_br = country_idx[cust] == len(_BASE_COUNTRIES)
    method = np.where(is_br, np.where(rng.random(len(cust)) < 0.6, 3, 0),
                      rng.choice(3, len(cust), p=[0.7, 0.2, 0.1]))
    amount_null = np.zeros(len(cust), bool)
    if defect_rng is not None:
        # null spike: a third of one month's payments lose their amount (a broken export)
        dm = world.defect_month
        in_month = (day >= world.month_start[dm]) & (day < world.month_start[dm + 1])
        amount_null = in_month & (defect_rng.random(len(cust)) < 0.35)
    cid = customer_id[cust]
    return {
        "payment_id": pa.array(cid * _ID_STRIDE + _seq_within(cid)),
        "customer_id": pa.array(cid),
        "subscription_id": pa.array(cid * 10 + 1),
        "paid_at": _to_ts(world, day, secs),
        "amount": pa.array(np.round(amount, 2), mask=amount_null),
        "status": _choice_strings(_PAYMENT_STATUSES, status),
        "payment_type": _choice_strings(_PAYMENT_TYPES, ptype),
        "payment_method": _choice_strings(_PAYMENT_METHODS, method),
    }


def _ticket_rows(rng, world, customer_id, tickets, health, fails, signup, cancel,
                 cancel_reason, cancelled):
    ms_w = world.month_start[world.first_window_month:]
    D = world.window_days
    r, m = np.nonzero(tickets)
    cnt = tickets[r, m]
    rep_r, rep_m = np.repeat(r, cnt), np.repeat(m, cnt)
    lo = np.maximum(ms_w[rep_m], signup[rep_r])
    hi = np.minimum(ms_w[rep_m + 1], cancel[rep_r])
    day = lo + (rng.random(len(rep_r)) * np.maximum(hi - lo, 1)).astype(np.int64)
    failed_month = fails[rep_r, rep_m] > 0
    cat = np.where(failed_month & (rng.random(len(rep_r)) < 0.6), 1,
                   rng.choice(4, len(rep_r), p=[0.45, 0.15, 0.2, 0.2]))
    low_health = health[rep_r, rep_m] < -1.0
    prio = np.where(low_health & (rng.random(len(rep_r)) < 0.3), 2,
                    rng.choice(4, len(rep_r), p=[0.3, 0.5, 0.15, 0.05]))
    # some leaving customers write in first ("how do I cancel?"): 1-10 days before
    leaving = np.flatnonzero(cancelled & (cancel_reason != 2) & (rng.random(len(signup)) < 0.2))
    c_day = cancel[leaving] - rng.integers(1, 11, len(leaving))
    ok = (c_day >= np.maximum(signup[leaving], 0))
    leaving, c_day = leaving[ok], c_day[ok]
    rows = np.r_[rep_r, leaving]
    day = np.r_[day, c_day]
    cat = np.r_[cat, np.full(len(leaving), 4)]
    prio = np.r_[prio, np.ones(len(leaving), np.int64)]
    keep = (day >= 0) & (day < D)
    rows, day, cat, prio = rows[keep], day[keep], cat[keep], prio[keep]
    secs = rng.integers(7 * 3600, 22 * 3600, len(rows))
    order = np.lexsort((secs, day, rows))
    rows, day, cat, prio, secs = rows[order], day[order], cat[order], prio[order], secs[order]
    k = len(rows)
    resolve_s = np.exp(rng.normal(np.log(20 * 3600), 1.0, k)).astype(np.int64)
    close_s = day * 86_400 + secs + resolve_s
    still_open = (close_s >= D * 86_400) | (rng.random(k) < 0.01)
    close_s = np.where(still_open, 0, close_s)
    sat = np.clip(np.round(rng.normal(3.9, 1.0, k) - 0.5 * (prio >= 2)), 1, 5)
    sat_missing = still_open | (rng.random(k) < 0.6)
    cid = customer_id[rows]
    return {
        "ticket_id": pa.array(cid * _ID_STRIDE + _seq_within(cid)),
        "customer_id": pa.array(cid),
        "opened_at": _to_ts(world, day, secs),
        "closed_at": _to_ts(world, close_s // 86_400, close_s % 86_400, mask=still_open),
        "category": _choice_strings(_TICKET_CATEGORIES, cat),
        "priority": _choice_strings(_TICKET_PRIORITIES, prio),
        "channel": _choice_strings(_TICKET_CHANNELS, rng.choice(3, k, p=[0.5, 0.35, 0.15])),
        "satisfaction_score": pa.array(sat.astype(np.int32), mask=sat_missing),
    }


def _static_tables(world: _World) -> dict[str, pa.Table]:
    launch = world.month_start[0] - 365
    plans = pa.table({
        "plan_id": pa.array(_PLAN_IDS),
        "plan_code": pa.array([p[1] for p in _PLANS]),
        "plan_name": pa.array([p[2] for p in _PLANS]),
        "tier": pa.array([p[3] for p in _PLANS], pa.int32()),
        "launched_on": _days_to_date32(world, np.array([launch] * 2 + [launch + 400] * 2)),
    }, schema=RAW_TABLES["plans"])
    pid, market, price, frm, to = [], [], [], [], []
    breaks = [launch, world.repricing_day, world.event_day]
    for i, plan in enumerate(_PLANS):
        for c, country in enumerate(_COUNTRIES):
            first = 2 if country == _NEW_MARKET else 0  # the new market opens at the shift
            periods = [(breaks[first], _PRICE_GRID[i, c, first])]
            for col in range(first + 1, 3):
                if _PRICE_GRID[i, c, col] != periods[-1][1]:
                    periods.append((breaks[col], _PRICE_GRID[i, c, col]))
            for p, (start, value) in enumerate(periods):
                pid.append(plan[0])
                market.append(country)
                price.append(value)
                frm.append(start)
                to.append(periods[p + 1][0] if p + 1 < len(periods) else None)
    open_ended = np.array([t is None for t in to])
    to_arr = np.array([0 if t is None else t for t in to], dtype=np.int64)
    prices = pa.table({
        "plan_id": pa.array(pid, pa.int64()),
        "country_code": pa.array(market, pa.string()),
        "monthly_price": pa.array(price, pa.float64()),
        "currency": pa.array(["USD"] * len(pid)),
        "valid_from": _days_to_date32(world, np.array(frm)),
        "valid_to": _days_to_date32(world, to_arr, mask=open_ended),
    }, schema=RAW_TABLES["plan_prices"])
    return {"plans": plans, "plan_prices": prices}


def _duplicate_some(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Defect: ~1% of customers appear twice (a re-import with a changed email)."""
    # a fixed share, at least one row, so that even a tiny demo carries the defect
    k = max(1, round(0.01 * table.num_rows))
    dup = np.sort(rng.choice(table.num_rows, k, replace=False))
    copies = table.take(pa.array(dup))
    emails = copies.column("email").to_numpy(zero_copy_only=False).astype(object)
    copies = copies.set_column(copies.schema.get_field_index("email"), "email",
                               pa.array(np.char.upper(emails.astype(str)), pa.string()))
    return pa.concat_tables([table, copies])


def generate(config: DemoConfig) -> Iterator[tuple[str, pa.Table]]:
    """Yield ``(raw table name, Arrow table)`` chunks of the demo warehouse.

    Every chunk matches ``RAW_TABLES[name]``. ``plans`` and ``plan_prices`` come once, first;
    then, per chunk of customers, one table each for customers, subscriptions, daily_usage,
    payments and support_tickets. Memory is bounded by ``config.chunk_customers``.
    """
    validate_config(config)
    world = _World.build(config)
    yield from _static_tables(world).items()
    n_blocks = -(-config.customers // _BLOCK)
    per_chunk = max(1, -(-config.chunk_customers // _BLOCK))
    for c0 in range(0, n_blocks, per_chunk):
        blocks = range(c0, min(c0 + per_chunk, n_blocks))
        parts = [_simulate_block(config, world, b) for b in blocks]
        for name in ("customers", "subscriptions", "daily_usage", "payments",
                     "support_tickets"):
            yield name, pa.concat_tables([p.pop(name) for p in parts]).combine_chunks()
        del parts
