select
    cast(ticket_id as {{ dbt.type_bigint() }}) as ticket_id,
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    opened_at,
    cast(opened_at as date) as opened_date,
    closed_at,
    category,
    priority,
    channel,
    cast(satisfaction_score as {{ dbt.type_int() }}) as satisfaction_score
from {{ source('raw', 'support_tickets') }}
