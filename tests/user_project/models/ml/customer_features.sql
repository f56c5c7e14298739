-- Last year's orders as features; this year's outcome as labels. `churned` is NULL for customers
-- whose renewal is not due yet; `next_year_spend` is what they spent this year.
with last_year as (
    select customer_id, count(*) as orders_last_year, sum(amount) as spend_last_year,
           avg(amount) as avg_order_last_year, sum(case when status = 'returned' then 1 else 0 end) as returns_last_year
    from {{ ref('orders') }}
    where order_year = 2025
    group by customer_id
),

this_year as (
    select customer_id, sum(amount) as spend_this_year
    from {{ ref('orders') }}
    where order_year = 2026
    group by customer_id
)

select
    c.customer_id,
    c.signup_channel,
    c.country,
    c.age,
    coalesce(l.orders_last_year, 0) as orders_last_year,
    coalesce(l.spend_last_year, 0) as spend_last_year,
    l.avg_order_last_year,
    coalesce(l.returns_last_year, 0) as returns_last_year,
    case when r.renewal_due then (t.spend_this_year is null) end as churned,
    coalesce(t.spend_this_year, 0) as next_year_spend
from {{ ref('customers') }} as c
left join last_year as l using (customer_id)
left join this_year as t using (customer_id)
left join {{ ref('raw_renewals') }} as r using (customer_id)
