select 1 as order_id, 10.0 as amount
union all
select 2 as order_id, 12.5 as amount
