-- omnitron__orders against the raw tables, order by order: the amount is the loaded one to
-- the last decimal, and the item count equals both the rows of order_items and the items
-- embedded in the order list (orderitem_set). Any row returned is a failure.
with mart as (
    select order_id, order_amount, item_count, items_amount from {{ ref('omnitron__orders') }}
),

raw_orders as (
    select
        {{ id('o.id') }} as order_id,
        {{ money('o.amount') }} as amount,
        {{ json_array_length('o.orderitem_set') }} as embedded_items
    from {{ source('omnitron', 'orders') }} as o
),

raw_items as (
    select {{ id(quoted_column('i', 'order')) }} as order_id, count(*) as items, sum({{ money('i.price') }}) as items_amount
    from {{ source('omnitron', 'order_items') }} as i
    group by {{ id(quoted_column('i', 'order')) }}
)

select r.order_id, m.order_amount, r.amount, m.item_count, r.embedded_items, ri.items
from raw_orders as r
left join mart as m on m.order_id = r.order_id
left join raw_items as ri on ri.order_id = r.order_id
where m.order_id is null
    or m.order_amount <> r.amount
    or m.item_count <> r.embedded_items
    or m.item_count <> coalesce(ri.items, 0)
    or m.items_amount <> coalesce(ri.items_amount, 0)
