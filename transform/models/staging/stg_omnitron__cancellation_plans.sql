-- One row per cancellation plan (order_details.cancellationplan_set): the fields the tap's
-- schema declares (pk, amount, created and modified dates).
with details as (
    select * from {{ source('omnitron', 'order_details') }}
)

select
    {{ id(json_text('c.value', 'pk')) }} as cancellation_plan_id,
    {{ id('d.pk') }} as order_id,
    {{ money(json_text('c.value', 'amount')) }} as amount,
    {{ iso_timestamp(json_text('c.value', 'created_date')) }} as created_at,
    {{ iso_timestamp(json_text('c.value', 'modified_date')) }} as modified_at,
    {{ utc_timestamp('d._sdc_batched_at') }} as loaded_at
from details as d,
    {{ json_array_elements('d.cancellationplan_set', 'c') }}
