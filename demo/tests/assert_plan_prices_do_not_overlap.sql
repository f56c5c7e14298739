-- Price periods of one plan in one market never overlap: one price on any day.
select a.plan_id, a.country_code, a.valid_from, b.valid_from as overlapping_from
from {{ ref('stg_plan_prices') }} as a
inner join {{ ref('stg_plan_prices') }} as b
    on a.plan_id = b.plan_id
    and a.country_code = b.country_code
    and a.valid_from < b.valid_from
    and (a.valid_to is null or a.valid_to > b.valid_from)
