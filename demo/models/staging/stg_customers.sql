-- Light cleaning only: trim and normalise case; nulls stay nulls (missing is information).
select
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    trim(full_name) as full_name,
    lower(trim(email)) as email,
    trim(phone) as phone,
    cast(birth_date as date) as birth_date,
    upper(trim(country_code)) as country_code,
    nullif(trim(city), '') as city,
    acquisition_channel,
    cast(signup_date as date) as signup_date,
    marketing_opt_in
from {{ source('raw', 'customers') }}
