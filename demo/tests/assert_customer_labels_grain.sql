-- customer_labels has one row per customer_id and snapshot_date.
select customer_id, snapshot_date, count(*) as n_rows
from {{ ref('customer_labels') }}
group by customer_id, snapshot_date
having count(*) > 1
