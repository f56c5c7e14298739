-- The population of the feature and label models: every customer with a subscription that
-- had started before the snapshot date and was not cancelled before it. One row per
-- customer and snapshot; the features and the labels both start from here.
select
    s.customer_id,
    c.snapshot_date,
    s.subscription_id,
    s.plan_id,
    s.start_date,
    s.cancel_date,
    c.observed_until
from {{ ref('stg_subscriptions') }} as s
inner join {{ ref('demo_snapshot_calendar') }} as c
    on s.start_date < c.snapshot_date
    and (s.cancel_date is null or s.cancel_date >= c.snapshot_date)
