select
    order_id,
    customer_id,
    amount,
    status,
    order_year
from {{ ref('raw_orders') }}
