-- One row per order, from its detailed view: what the list lacks (payment option, cargo
-- company and channel as objects, customer id, client, cancel status). Nothing secret is
-- read: channel.conf, payment_option.config and the transactions' raw bank messages stay out.
with details as (
    select * from {{ source('omnitron', 'order_details') }}
),

statuses as (
    select * from {{ ref('omnitron_order_statuses') }}
)

select
    {{ id('d.pk') }} as order_id,
    d.number as order_number,
    d.status as status_code,
    s.status_name,
    d.status_display,
    d.cancel_status,
    upper(d.currency) as currency,
    {{ utc_timestamp('d.date_placed') }} as placed_at,
    cast(d.date_placed as date) as placed_on,
    {{ omnitron_order_amounts('d') }},
    {{ id(json_text('d.customer', 'pk')) }} as customer_id,
    {{ omnitron_customer_columns('d') }},
    {{ omnitron_address_columns('d', 'shipping') }},
    {{ omnitron_address_columns('d', 'billing') }},
    {{ id(json_text('d.payment_option', 'pk')) }} as payment_option_id,
    {{ json_text('d.payment_option', 'name') }} as payment_option_name,
    {{ json_text('d.payment_option', 'payment_type') }} as payment_type,
    {{ id(json_text('d.cargo_company', 'pk')) }} as cargo_company_id,
    {{ json_text('d.cargo_company', 'name') }} as cargo_company_name,
    {{ json_text('d.cargo_company', 'shipping_company') }} as cargo_company_code,
    {{ id(json_text('d.channel', 'pk')) }} as channel_id,
    {{ json_text('d.channel', 'name') }} as channel_name,
    {{ json_text('d.channel', 'channel_type') }} as channel_type,
    d.client_type,
    d.language_code,
    {{ id('d.installment_count') }} as installment_count,
    d.tracking_number,
    d.tracking_url,
    d.invoice_number,
    {{ utc_timestamp('d.invoice_date') }} as invoice_at,
    d.is_send,
    d.has_gift_box,
    {{ utc_timestamp('d._sdc_batched_at') }} as loaded_at
from details as d
left join statuses as s
    on s.status_code = d.status
