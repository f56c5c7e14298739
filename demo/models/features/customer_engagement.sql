{#
  Engagement signals per customer and snapshot, joinable to customer_features on
  (customer_id, snapshot_date). Planted defect, on purpose: retention_risk_flag is computed
  from customer_labels.churned_30d (the future churn outcome) under an innocent name, so that
  `dwml features suggest` has a real leak to find through column lineage. Its AUC alone stays
  below the "near-perfect" threshold (the low-activity branch dilutes it): only lineage shows it.
#}

with population as (
    select customer_id, snapshot_date from {{ ref('demo_customer_snapshots') }}
),

recent_usage as (
    select
        pop.customer_id,
        pop.snapshot_date,
        count(case when u.usage_date >= {{ dbt.dateadd('day', -14, 'pop.snapshot_date') }} then 1 end)
            as active_days_14d,
        sum(case when u.usage_date >= {{ dbt.dateadd('day', -7, 'pop.snapshot_date') }}
            then u.sessions else 0 end) as sessions_7d
    from population as pop
    inner join {{ ref('stg_daily_usage') }} as u
        on u.customer_id = pop.customer_id
        and u.usage_date < pop.snapshot_date
        and u.usage_date >= {{ dbt.dateadd('day', -14, 'pop.snapshot_date') }}
    group by pop.customer_id, pop.snapshot_date
),

recent_tickets as (
    select
        pop.customer_id,
        pop.snapshot_date,
        min({{ dbt.datediff('t.opened_date', 'pop.snapshot_date', 'day') }}) as days_since_last_ticket,
        avg(t.satisfaction_score) as avg_satisfaction_90d
    from population as pop
    inner join {{ ref('stg_support_tickets') }} as t
        on t.customer_id = pop.customer_id
        and t.opened_date < pop.snapshot_date
        and t.opened_date >= {{ dbt.dateadd('day', -90, 'pop.snapshot_date') }}
    group by pop.customer_id, pop.snapshot_date
),

retention_review as (
    select customer_id, snapshot_date, churned_30d as reviewed_at_risk
    from {{ ref('customer_labels') }}
)

select
    pop.customer_id,
    pop.snapshot_date,
    cast(coalesce(ru.active_days_14d, 0) as {{ dbt.type_int() }}) as active_days_14d,
    cast(coalesce(ru.sessions_7d, 0) as {{ dbt.type_int() }}) as sessions_7d,
    cast(rt.days_since_last_ticket as {{ dbt.type_int() }}) as days_since_last_ticket,
    rt.avg_satisfaction_90d,
    cast(case
        when rr.reviewed_at_risk = 1 then 1
        when coalesce(ru.active_days_14d, 0) < 5 then 1
        else 0
    end as {{ dbt.type_int() }}) as retention_risk_flag
from population as pop
left join recent_usage as ru
    on pop.customer_id = ru.customer_id and pop.snapshot_date = ru.snapshot_date
left join recent_tickets as rt
    on pop.customer_id = rt.customer_id and pop.snapshot_date = rt.snapshot_date
left join retention_review as rr
    on pop.customer_id = rr.customer_id and pop.snapshot_date = rr.snapshot_date
