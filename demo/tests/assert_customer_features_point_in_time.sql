-- Every feature row describes a customer who had signed up before the snapshot, and no
-- activity window reaches the snapshot date itself.
select customer_id, snapshot_date, tenure_days, days_since_last_activity
from {{ ref('customer_features') }}
where tenure_days < 1
    or days_since_last_activity < 1
    or days_since_last_activity > 90
