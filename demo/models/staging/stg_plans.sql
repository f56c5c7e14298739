select
    cast(plan_id as {{ dbt.type_bigint() }}) as plan_id,
    plan_code,
    plan_name,
    cast(tier as {{ dbt.type_int() }}) as tier,
    cast(launched_on as date) as launched_on
from {{ source('raw', 'plans') }}
