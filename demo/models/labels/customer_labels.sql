-- Labels for the customer_features population, from rows dated on or after snapshot_date.
-- A label is null until its window has fully passed (label_is_mature flags say which);
-- train on rows where the label is not null, evaluate later snapshots once they mature.

with population as (
    select * from {{ ref('demo_customer_snapshots') }}
),

revenue as (
    select
        p.customer_id,
        c.snapshot_date,
        sum(p.amount) as revenue
    from {{ ref('stg_payments') }} as p
    inner join {{ ref('demo_snapshot_calendar') }} as c
        on p.payment_date >= c.snapshot_date
        and p.payment_date < {{ dbt.dateadd('day', 90, 'c.snapshot_date') }}
    where p.status = 'succeeded'
    group by p.customer_id, c.snapshot_date
),

flagged as (
    select
        pop.customer_id,
        pop.snapshot_date,
        pop.cancel_date,
        r.revenue,
        {{ dbt.dateadd('day', 30, 'pop.snapshot_date') }} <= pop.observed_until
            as churn_label_is_mature,
        {{ dbt.dateadd('day', 90, 'pop.snapshot_date') }} <= pop.observed_until
            as revenue_label_is_mature
    from population as pop
    left join revenue as r
        on pop.customer_id = r.customer_id and pop.snapshot_date = r.snapshot_date
)

select
    customer_id,
    snapshot_date,
    cast(case
        when not churn_label_is_mature then null
        when cancel_date < {{ dbt.dateadd('day', 30, 'snapshot_date') }} then 1
        else 0
    end as {{ dbt.type_int() }}) as churned_30d,
    case when revenue_label_is_mature then coalesce(revenue, 0) end as revenue_next_90d,
    churn_label_is_mature,
    revenue_label_is_mature
from flagged
