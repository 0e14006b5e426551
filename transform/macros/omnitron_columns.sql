{#- Column lists that the list view (orders) and the detailed view (order_details) share,
    written once. `relation` is the table alias in the calling model. -#}

{#- The order-level amounts: decimal text or numeric in the loaders, exact numeric here. -#}
{% macro omnitron_order_amounts(relation) -%}
    {%- for name in [
        'amount', 'discount_amount', 'shipping_amount', 'shipping_interest_amount',
        'installment_interest_amount', 'net_shipping_amount', 'refund_amount',
        'discount_refund_amount', 'shipping_refund_amount', 'shipping_tax_rate'] %}
    {{ money(relation ~ '.' ~ name) }} as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- customer: {email, first_name, last_name, ...} in both views. -#}
{% macro omnitron_customer_columns(relation) -%}
    {{ json_text(relation ~ '.customer', 'email') }} as customer_email,
    {{ json_text(relation ~ '.customer', 'first_name') }} as customer_first_name,
    {{ json_text(relation ~ '.customer', 'last_name') }} as customer_last_name
{%- endmacro %}

{#- shipping_address / billing_address: city {name}, country {name, code} in both views. -#}
{% macro omnitron_address_columns(relation, kind) -%}
    {%- set address = relation ~ '.' ~ kind ~ '_address' %}
    {{ json_text(address, 'city.name') }} as {{ kind }}_city,
    {{ json_text(address, 'country.name') }} as {{ kind }}_country,
    upper({{ json_text(address, 'country.code') }}) as {{ kind }}_country_code
{%- endmacro %}
