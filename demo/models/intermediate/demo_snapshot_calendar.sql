-- Monthly snapshot dates, derived from the data rather than a DuckDB-only range():
-- the first day of every month after a month with activity, from the fourth month on (so
-- every snapshot has 90 days of history) up to the end of the observed window.
with activity_months as (
    select distinct cast({{ dbt.date_trunc('month', 'usage_date') }} as date) as month_start
    from {{ ref('stg_daily_usage') }}
),

bounds as (
    select
        min(month_start) as first_month,
        max(month_start) as last_month
    from activity_months
)

select
    cast({{ dbt.dateadd('month', 1, 'a.month_start') }} as date) as snapshot_date,
    cast({{ dbt.dateadd('month', 1, 'b.last_month') }} as date) as observed_until
from activity_months as a
cross join bounds as b
where cast({{ dbt.dateadd('month', 1, 'a.month_start') }} as date)
    >= cast({{ dbt.dateadd('month', 3, 'b.first_month') }} as date)
