-- One row per shipping record (order_details.ordershippinginfo_set). The carrier's raw
-- request and response are left out.
with details as (
    select * from {{ source('omnitron', 'order_details') }}
)

select
    {{ id(json_text('s.value', 'pk')) }} as shipping_info_id,
    {{ id('d.pk') }} as order_id,
    {{ json_text('s.value', 'order_number') }} as order_number,
    {{ json_text('s.value', 'shipping_company') }} as shipping_company,
    cast({{ json_text('s.value', 'is_send') }} as boolean) as is_send,
    {{ json_text('s.value', 'cargo_label') }} as cargo_label,
    {{ iso_timestamp(json_text('s.value', 'created_date')) }} as created_at,
    {{ iso_timestamp(json_text('s.value', 'modified_date')) }} as modified_at,
    {{ utc_timestamp('d._sdc_batched_at') }} as loaded_at
from details as d,
    {{ json_array_elements('d.ordershippinginfo_set', 's') }}
