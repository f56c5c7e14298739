-- Point-in-time customer features: one row per customer active at a monthly snapshot date,
-- built only from rows dated strictly before snapshot_date (windows are [snapshot - N days,
-- snapshot)). Activity rows are first matched to the (small) snapshot calendar on their date
-- and then aggregated, which is cheap on any engine; no direct PII columns come through.

with calendar as (
    select snapshot_date from {{ ref('demo_snapshot_calendar') }}
),

population as (
    select * from {{ ref('demo_customer_snapshots') }}
),

usage_90d as (
    select
        u.customer_id,
        c.snapshot_date,
        u.sessions,
        u.minutes,
        {{ dbt.datediff('u.usage_date', 'c.snapshot_date', 'day') }} as days_before
    from {{ ref('stg_daily_usage') }} as u
    inner join calendar as c
        on u.usage_date < c.snapshot_date
        and u.usage_date >= {{ dbt.dateadd('day', -90, 'c.snapshot_date') }}
),

usage_agg as (
    select
        customer_id,
        snapshot_date,
        count(case when days_before <= 30 then 1 end) as active_days_30d,
        sum(case when days_before <= 30 then sessions else 0 end) as sessions_30d,
        sum(case when days_before <= 30 then minutes else 0 end) as minutes_30d,
        sum(case when days_before > 30 and days_before <= 60 then minutes else 0 end)
            as minutes_prev_30d,
        min(days_before) as days_since_last_activity
    from usage_90d
    group by customer_id, snapshot_date
),

payments_agg as (
    select
        p.customer_id,
        c.snapshot_date,
        count(case when p.status = 'failed' then 1 end) as payment_failures_90d,
        sum(case when p.status = 'succeeded' then p.amount else 0 end) as payment_amount_90d,
        count(case when p.status = 'succeeded' and p.payment_type = 'addon' then 1 end)
            as addon_purchases_90d
    from {{ ref('stg_payments') }} as p
    inner join calendar as c
        on p.payment_date < c.snapshot_date
        and p.payment_date >= {{ dbt.dateadd('day', -90, 'c.snapshot_date') }}
    group by p.customer_id, c.snapshot_date
),

tickets_agg as (
    select
        t.customer_id,
        c.snapshot_date,
        count(*) as tickets_90d,
        count(case when t.priority in ('high', 'urgent') then 1 end)
            as high_priority_tickets_90d,
        count(case when t.category = 'billing' then 1 end) as billing_tickets_90d
    from {{ ref('stg_support_tickets') }} as t
    inner join calendar as c
        on t.opened_date < c.snapshot_date
        and t.opened_date >= {{ dbt.dateadd('day', -90, 'c.snapshot_date') }}
    group by t.customer_id, c.snapshot_date
)

select
    pop.customer_id,
    pop.snapshot_date,
    -- who and where
    {{ dbt.datediff('cu.signup_date', 'pop.snapshot_date', 'day') }} as tenure_days,
    pl.plan_code,
    pr.monthly_price,
    cu.country_code,
    cu.city,
    cu.acquisition_channel,
    cast(floor({{ dbt.datediff('cu.birth_date', 'pop.snapshot_date', 'day') }} / 365.25)
        as {{ dbt.type_int() }}) as age_years,
    cu.marketing_opt_in,
    -- usage
    cast(coalesce(ua.active_days_30d, 0) as {{ dbt.type_int() }}) as active_days_30d,
    cast(coalesce(ua.sessions_30d, 0) as {{ dbt.type_bigint() }}) as sessions_30d,
    coalesce(ua.minutes_30d, 0) as minutes_30d,
    coalesce(ua.minutes_prev_30d, 0) as minutes_prev_30d,
    ua.minutes_30d / nullif(ua.minutes_prev_30d, 0) as usage_trend_30d,
    ua.minutes_30d / nullif(ua.sessions_30d, 0) as avg_session_minutes_30d,
    cast(ua.days_since_last_activity as {{ dbt.type_int() }}) as days_since_last_activity,
    -- billing
    cast(coalesce(pa.payment_failures_90d, 0) as {{ dbt.type_int() }}) as payment_failures_90d,
    coalesce(pa.payment_amount_90d, 0) as payment_amount_90d,
    cast(coalesce(pa.addon_purchases_90d, 0) as {{ dbt.type_int() }}) as addon_purchases_90d,
    -- support
    cast(coalesce(ta.tickets_90d, 0) as {{ dbt.type_int() }}) as tickets_90d,
    cast(coalesce(ta.high_priority_tickets_90d, 0) as {{ dbt.type_int() }})
        as high_priority_tickets_90d,
    cast(coalesce(ta.billing_tickets_90d, 0) as {{ dbt.type_int() }}) as billing_tickets_90d
from population as pop
inner join {{ ref('stg_customers') }} as cu
    on pop.customer_id = cu.customer_id
inner join {{ ref('stg_plans') }} as pl
    on pop.plan_id = pl.plan_id
left join {{ ref('stg_plan_prices') }} as pr
    on pop.plan_id = pr.plan_id
    and cu.country_code = pr.country_code
    and pr.valid_from < pop.snapshot_date
    and (pr.valid_to is null or pr.valid_to >= pop.snapshot_date)
left join usage_agg as ua
    on pop.customer_id = ua.customer_id and pop.snapshot_date = ua.snapshot_date
left join payments_agg as pa
    on pop.customer_id = pa.customer_id and pop.snapshot_date = pa.snapshot_date
left join tickets_agg as ta
    on pop.customer_id = ta.customer_id and pop.snapshot_date = ta.snapshot_date
