-- One row per payment transaction (order_details.transaction_set). The bank's raw request
-- and response (redacted by the tap) and the POS configuration are left out on purpose.
with details as (
    select * from {{ source('omnitron', 'order_details') }}
)

select
    {{ id(json_text('t.value', 'pk')) }} as transaction_id,
    {{ id('d.pk') }} as order_id,
    {{ json_text('t.value', 'transaction_type') }} as transaction_type,
    {{ json_text('t.value', 'transaction_id') }} as gateway_transaction_id,
    {{ json_text('t.value', 'auth_code') }} as auth_code,
    {{ money(json_text('t.value', 'amount')) }} as amount,
    upper({{ json_text('t.value', 'currency') }}) as currency,
    cast({{ json_text('t.value', 'is_succeeded') }} as boolean) as is_succeeded,
    {{ json_text('t.value', 'pos.name') }} as pos_name,
    {{ json_text('t.value', 'pos_slug') }} as pos_slug,
    {{ json_text('t.value', 'pos.gateway_display') }} as pos_gateway,
    {{ json_text('t.value', 'user_email') }} as user_email,
    {{ iso_timestamp(json_text('t.value', 'created_date')) }} as created_at,
    {{ iso_timestamp(json_text('t.value', 'modified_date')) }} as modified_at,
    {{ utc_timestamp('d._sdc_batched_at') }} as loaded_at
from details as d,
    {{ json_array_elements('d.transaction_set', 't') }}
