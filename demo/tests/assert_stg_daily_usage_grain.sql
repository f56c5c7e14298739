-- stg_daily_usage has one row per customer_id and usage_date.
select customer_id, usage_date, count(*) as n_rows
from {{ ref('stg_daily_usage') }}
group by customer_id, usage_date
having count(*) > 1
