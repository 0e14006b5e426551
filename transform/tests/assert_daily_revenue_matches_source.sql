-- omnitron__daily_revenue adds up, per currency, to the loaded orders: the same number of
-- orders and items and the same sums of amount and net amount to the last decimal (a missing
-- currency counts as ''). Any row returned is a failure.
with revenue as (
    select coalesce(currency, '') as currency, sum(order_count) as orders, sum(item_count) as items,
        sum(order_amount) as amount, sum(net_amount) as net_amount
    from {{ ref('omnitron__daily_revenue') }}
    group by coalesce(currency, '')
),

raw_orders as (
    select coalesce(upper(o.currency), '') as currency, count(*) as orders,
        sum({{ json_array_length('o.orderitem_set') }}) as items,
        sum({{ money('o.amount') }}) as amount,
        sum({{ money('o.amount') }} - coalesce({{ money('o.refund_amount') }}, 0)) as net_amount
    from {{ source('omnitron', 'orders') }} as o
    group by coalesce(upper(o.currency), '')
)

select coalesce(r.currency, s.currency) as currency, r.orders, s.orders as source_orders,
    r.amount, s.amount as source_amount
from revenue as r
full outer join raw_orders as s on s.currency = r.currency
where r.currency is null or s.currency is null
    or r.orders <> s.orders or r.items <> s.items
    or r.amount <> s.amount or r.net_amount <> s.net_amount
