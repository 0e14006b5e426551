-- One row per order, from the order list: typed, status named, nested JSON flattened.
with orders as (
    select * from {{ source('omnitron', 'orders') }}
),

statuses as (
    select * from {{ ref('omnitron_order_statuses') }}
)

select
    {{ id('o.id') }} as order_id,
    o.number as order_number,
    o.status as status_code,
    s.status_name,
    upper(o.currency) as currency,
    {{ utc_timestamp('o.date_placed') }} as placed_at,
    cast(o.date_placed as date) as placed_on,
    {{ omnitron_order_amounts('o') }},
    {{ omnitron_customer_columns('o') }},
    {{ omnitron_address_columns('o', 'shipping') }},
    {{ omnitron_address_columns('o', 'billing') }},
    {{ id('o.payment_option') }} as payment_option_id,
    o.payment_option_slug,
    {{ id('o.cargo_company') }} as cargo_company_id,
    {{ json_text('o.channel', 'name') }} as channel_name,
    {{ id('o.installment_count') }} as installment_count,
    o.tracking_number,
    o.invoice_number,
    {{ utc_timestamp('o.invoice_date') }} as invoice_at,
    o.is_send,
    o.has_gift_box,
    {{ utc_timestamp('o._sdc_batched_at') }} as loaded_at
from orders as o
left join statuses as s
    on s.status_code = o.status
