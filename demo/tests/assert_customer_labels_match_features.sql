-- customer_labels and customer_features describe the same customer snapshots.
select f.customer_id, f.snapshot_date
from {{ ref('customer_features') }} as f
left join {{ ref('customer_labels') }} as l
    on f.customer_id = l.customer_id and f.snapshot_date = l.snapshot_date
where l.customer_id is null
