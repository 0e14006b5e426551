-- One row per order item, with the attributes of its order.
with items as (
    select * from {{ ref('stg_omnitron__order_items') }}
),

orders as (
    select * from {{ ref('omnitron__orders') }}
)

select
    i.order_item_id,
    i.order_id,
    o.order_number,
    i.product_sku,
    i.status_code,
    i.status_name,
    i.cancel_status,
    i.currency,
    i.price,
    i.retail_price,
    i.discount_amount,
    i.tax_rate,
    i.shipping_company,
    o.status_code as order_status_code,
    o.status_name as order_status_name,
    o.placed_at,
    o.placed_on,
    o.customer_email,
    o.shipping_city,
    o.shipping_country_code,
    o.payment_option_slug,
    o.channel_name,
    i.loaded_at
from items as i
inner join orders as o
    on o.order_id = i.order_id
