select
    customer_id,
    lower(email) as email,
    signup_channel,
    country,
    age
from {{ ref('raw_customers') }}
