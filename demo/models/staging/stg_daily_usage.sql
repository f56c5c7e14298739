-- One row per customer and day with any activity; days without activity have no row.
select
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(usage_date as date) as usage_date,
    cast(sessions as {{ dbt.type_int() }}) as sessions,
    minutes
from {{ source('raw', 'daily_usage') }}
