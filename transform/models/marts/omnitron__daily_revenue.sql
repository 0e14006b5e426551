-- Revenue per day (date_placed, UTC), order status and currency.
with orders as (
    select * from {{ ref('omnitron__orders') }}
)

select
    placed_on,
    status_code,
    status_name,
    currency,
    count(*) as order_count,
    sum(item_count) as item_count,
    sum(gross_amount) as gross_amount,
    sum(discount_amount) as discount_amount,
    sum(refund_amount) as refund_amount,
    sum(net_amount) as net_amount,
    sum(order_amount) as order_amount
from orders
group by placed_on, status_code, status_name, currency
