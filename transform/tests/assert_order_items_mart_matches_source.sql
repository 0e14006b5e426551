-- omnitron__order_items holds every loaded item once, at its loaded price, and each order's
-- items add up to the items_amount of omnitron__orders. Any row returned is a failure.
with mart as (
    select order_item_id, order_id, price from {{ ref('omnitron__order_items') }}
),

raw_items as (
    select {{ id('i.id') }} as order_item_id, {{ money('i.price') }} as price
    from {{ source('omnitron', 'order_items') }} as i
),

per_order as (
    select order_id, sum(price) as items_amount from mart group by order_id
)

select 'item' as failure, r.order_item_id as id
from raw_items as r
left join mart as m on m.order_item_id = r.order_item_id
where m.order_item_id is null or m.price <> r.price

union all

select 'order total' as failure, o.order_id as id
from {{ ref('omnitron__orders') }} as o
left join per_order as p on p.order_id = o.order_id
where coalesce(p.items_amount, 0) <> o.items_amount
