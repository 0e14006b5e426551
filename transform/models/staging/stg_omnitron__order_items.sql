-- One row per order item: typed, status named.
with items as (
    select * from {{ source('omnitron', 'order_items') }}
),

statuses as (
    select * from {{ ref('omnitron_order_statuses') }}
)

select
    {{ id('i.id') }} as order_item_id,
    {{ id(quoted_column('i', 'order')) }} as order_id,
    i.product_sku,
    i.status as status_code,
    s.status_name,
    i.cancel_status,
    upper(i.price_currency) as currency,
    {{ money('i.price') }} as price,
    {{ money('i.retail_price') }} as retail_price,
    {{ money('i.discount_amount') }} as discount_amount,
    {{ money('i.installment_interest_amount') }} as installment_interest_amount,
    {{ money('i.tax_rate') }} as tax_rate,
    i.shipping_company,
    i.tracking_number,
    i.invoice_number,
    {{ id('i.price_list') }} as price_list_id,
    {{ id('i.stock_list') }} as stock_list_id,
    {{ utc_timestamp('i._sdc_batched_at') }} as loaded_at
from items as i
left join statuses as s
    on s.status_code = i.status
