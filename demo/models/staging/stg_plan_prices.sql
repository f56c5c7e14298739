-- One row per plan, market and price period; valid_to is exclusive and null for the current price.
select
    cast(plan_id as {{ dbt.type_bigint() }}) as plan_id,
    upper(trim(country_code)) as country_code,
    monthly_price,
    upper(currency) as currency,
    cast(valid_from as date) as valid_from,
    cast(valid_to as date) as valid_to
from {{ source('raw', 'plan_prices') }}
