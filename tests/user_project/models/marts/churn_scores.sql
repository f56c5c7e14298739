-- The shop's own churn heuristic, from before it had a model: the same name dwml would give the
-- scaffolded scoring model of an ML model called churn.
select customer_id, case when orders = 0 then 1.0 else 1.0 / orders end as churn_score
from {{ ref('customers') }}
