select
    c.customer_id,
    c.signup_channel,
    c.country,
    c.age,
    count(o.order_id) as orders,
    coalesce(sum(o.amount), 0) as lifetime_amount
from {{ ref('stg_customers') }} as c
left join {{ ref('stg_orders') }} as o using (customer_id)
group by all
