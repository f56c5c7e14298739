select
    cast(subscription_id as {{ dbt.type_bigint() }}) as subscription_id,
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(plan_id as {{ dbt.type_bigint() }}) as plan_id,
    started_at,
    cancelled_at,
    cast(started_at as date) as start_date,
    cast(cancelled_at as date) as cancel_date,
    cancel_reason,
    cancelled_at is null as is_active
from {{ source('raw', 'subscriptions') }}
