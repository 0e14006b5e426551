-- One row per order: the list's columns, what the detailed view adds, and its items.
-- gross_amount = order amount before discounts (items + shipping + interest);
-- net_amount   = gross - discount - refund (= Omnitron's amount less refund_amount).
with orders as (
    select * from {{ ref('stg_omnitron__orders') }}
),

details as (
    select * from {{ ref('stg_omnitron__order_details') }}
),

items as (
    select
        order_id,
        count(*) as item_count,
        sum(price) as items_amount
    from {{ ref('stg_omnitron__order_items') }}
    group by order_id
)

select
    o.order_id,
    o.order_number,
    o.status_code,
    o.status_name,
    o.currency,
    o.placed_at,
    o.placed_on,
    coalesce(i.item_count, 0) as item_count,
    coalesce(i.items_amount, 0) as items_amount,
    o.amount + coalesce(o.discount_amount, 0) as gross_amount,
    coalesce(o.discount_amount, 0) as discount_amount,
    coalesce(o.refund_amount, 0) as refund_amount,
    o.amount - coalesce(o.refund_amount, 0) as net_amount,
    o.amount as order_amount,
    o.shipping_amount,
    o.shipping_interest_amount,
    o.installment_interest_amount,
    o.discount_refund_amount,
    o.shipping_refund_amount,
    d.customer_id,
    o.customer_email,
    o.customer_first_name,
    o.customer_last_name,
    o.shipping_city,
    o.shipping_country,
    o.shipping_country_code,
    o.billing_city,
    o.billing_country,
    o.billing_country_code,
    o.payment_option_slug,
    d.payment_option_name,
    d.payment_type,
    d.cargo_company_name,
    o.channel_name,
    d.channel_type,
    d.client_type,
    o.installment_count,
    o.tracking_number,
    o.loaded_at
from orders as o
left join details as d
    on d.order_id = o.order_id
left join items as i
    on i.order_id = o.order_id
