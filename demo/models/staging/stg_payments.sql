-- Every payment attempt: failed card charges are retried and appear as separate rows.
select
    cast(payment_id as {{ dbt.type_bigint() }}) as payment_id,
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(subscription_id as {{ dbt.type_bigint() }}) as subscription_id,
    paid_at,
    cast(paid_at as date) as payment_date,
    amount,
    status,
    payment_type,
    payment_method,
    status = 'succeeded' as is_succeeded
from {{ source('raw', 'payments') }}
