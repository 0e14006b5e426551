"""Deterministic Omnitron order data and the in-memory store behind the sandbox.

Everything here is stdlib only. Orders are generated from a seed; the list-shaped
order (``GET /api/i1/orders/``) is the mutable state, and the detailed view
(``.../detailed_integration/``) is derived from it plus per-order deterministic
extras, so the amounts of both views always agree. JSON bytes of each view are
built lazily and cached until the order changes.

Two shapes (``Store(shape=...)``): "documented" serves what Omnitron's documentation
shows, with no order-level ``modified_date``/``created_date`` in the list or at the top
of the detailed view; "extended" adds both. Either way the store keeps both dates and
filters and sorts on them, as a real server does.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterable

SHAPES = ("documented", "extended")
ORDER_DATES = ("modified_date", "created_date")  # kept by the store, served in "extended" only

SECRET = "SANDBOX-SECRET"
"""Every credential-like value served by the sandbox contains this substring."""

STATUSES: dict[str, str] = {
    "50": "cancellation_waiting",
    "100": "cancelled",
    "200": "waiting",
    "300": "payment_waiting",
    "350": "confirmation_waiting",
    "400": "approved",
    "450": "preparing",
    "500": "shipped",
    "510": "shipped_and_informed",
    "520": "ready_for_pickup",
    "540": "attempted_delivery",
    "544": "review_started",
    "545": "review_waiting",
    "546": "waiting_for_payment",
    "547": "paid",
    "550": "delivered",
    "600": "refunded",
}
STATUS_CODES = tuple(STATUSES)
_STATUS_WEIGHTS = (2, 6, 2, 2, 1, 10, 8, 12, 3, 2, 1, 1, 1, 1, 2, 40, 5)

UTC = timezone.utc
TWO_PLACES = Decimal("0.01")

# (country code, country name, Turkish country name, city pk, city, (township pk, name),
#  (district pk, name), postcode)
_PLACES = (
    ("tr", "Turkey", "Türkiye", 71, "Afyon", (853, "DİNAR"), (3679, "İNCESU"), "03400"),
    ("tr", "Turkey", "Türkiye", 34, "İstanbul", (410, "Kadıköy"), (5120, "Göztepe"), "34730"),
    ("tr", "Turkey", "Türkiye", 35, "İzmir", (520, "Karşıyaka"), (6011, "Bostanlı"), "35590"),
    ("tr", "Turkey", "Türkiye", 6, "Ankara", (120, "Çankaya"), (1502, "Kızılay"), "06420"),
    ("tr", "Turkey", "Türkiye", 16, "Bursa", (230, "Osmangazi"), (2890, "Çekirge"), "16080"),
    ("tr", "Turkey", "Türkiye", 38, "Kayseri", (611, "İNCESU"), (7001, "Şeyhşamil"), ""),
    ("it", "Italy", "İtalya", 1, "MILANO", (1, "20158 Milano MI"), (5, "Lorem Ipsum"), ""),
    ("it", "Italy", "İtalya", 28, "ROME", (318, "Rome"), (24444, "Lorem Ipsum"), "43211"),
)
_COUNTRY_PK = {"tr": 1, "it": 2}
_FIRST = (
    "Ayşe",
    "Mehmet",
    "Gülşen",
    "Çağrı",
    "Şükrü",
    "Öykü",
    "İsmail",
    "Ümit",
    "Barış",
    "Zeynep",
    "Doğan",
    "Müge",
    "Ilgaz",
    "Süleyman",
    "Elif",
    "Lorem",
)
_LAST = (
    "Yılmaz",
    "Öztürk",
    "Çelik",
    "Şahin",
    "Doğan",
    "Güneş",
    "Aydın",
    "Kılıç",
    "Erdoğan",
    "Koç",
    "Işık",
    "Ünal",
    "Ipsum",
)
_STREETS = (
    "Atatürk Cad. No:5",
    "Bağdat Cad. 212/4",
    "Gül Sok. Çiçek Apt. D:3",
    "Viale Edoardo Jenner",
    "İnönü Bulvarı 17",
    "Şehit Öğretmen Sok. 9",
)
# Rows of (pk, name, channel_type, server).
_CHANNELS = (
    (1, "Shop", "web", "https://example-shop.com.tr/api/v1/"),
    (2, "Mağaza Uygulaması", "mobile", "https://app.example-shop.com.tr/api/v1/"),
    (3, "Pazaryeri", "marketplace", "https://marketplace.example.com.tr/sapigw/"),
)
# Rows of (pk, name, erp_code, shipping_company).
_CARGO = (
    (1, "Aras", "ARAS", "aras"),
    (2, "Yurtiçi Kargo", "YK", "yurtici"),
    (3, "MNG", "MNG", "mng"),
    (4, "Sürat Kargo", "SURAT", "surat"),
)
# (pk, name, list slug, detail slug, payment_type, Turkish name)
_PAYMENTS = (
    (2, "Credit Card", "kredi_karti", "credit_card", "credit_card", "Kredi Kartı"),
    (3, "Funds Transfer", "havale", "funds_transfer", "funds_transfer", "Havale/EFT"),
    (4, "Pay on Delivery", "kapida_odeme", "pay_on_delivery", "pay_on_delivery", "Kapıda Ödeme"),
)
_PAYMENT_WEIGHTS = (8, 1, 1)
# (bank pk, bank name, bank slug, card pk, card name)
_CARDS = (
    (16, "İş Bankası", "is-bankas", 23, "Maximum"),
    (12, "Garanti BBVA", "garanti", 19, "Bonus"),
    (20, "Yapı Kredi", "yapi-kredi", 31, "World"),
    (8, "Akbank", "akbank", 15, "Axess"),
)
# Rows of (pk, name, slug, gateway, display, resource_url).
_POS = (
    (
        2,
        "NestPay",
        "HA",
        "omnicore.libs.payment_gateways.nestpay.NestpayGateway",
        "Nestpay",
        "https://entegrasyon.asseco-see.com.tr/fim/api",
    ),
    (
        3,
        "Garanti POS",
        "GA",
        "omnicore.libs.payment_gateways.garanti.GarantiGateway",
        "Garanti",
        "https://sanalposprov.garanti.com.tr/VPServlet",
    ),
)
_ATTRS = (
    {},
    {},
    {"renk": "Kırmızı", "beden": "M"},
    {"renk": "Yeşil", "beden": "42"},
    {"malzeme": "Pamuk", "renk": "Açık Gri"},
)
_TR_ASCII = str.maketrans("çğıöşüÇĞİÖŞÜ", "cgiosuCGIOSU")
_OLD = "2017-01-24T10:58:56.765596Z"  # timestamp for static reference objects


def iso(dt: datetime) -> str:
    """Format like Django REST framework: microseconds omitted when zero, UTC as ``Z``."""
    s = dt.astimezone(UTC).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def money(d: Decimal) -> str:
    return str(d.quantize(TWO_PLACES))


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 date/time (``Z`` or offset); naive values are taken as UTC."""
    text = value.strip()
    dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)  # 3.10: no "Z"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, like DRF's JSONRenderer (UNICODE_JSON, COMPACT_JSON)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(10 ** (n - 1), 10**n - 1))


@lru_cache(maxsize=4096)
def _customer(seed: int | str, pk: int) -> dict[str, Any]:
    rng = random.Random(f"{seed}:customer:{pk}")
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    email = f"{first}.{last}{pk}@example.com".translate(_TR_ASCII).lower()
    if rng.random() < 0.05:
        email += " "  # the documented list example has trailing spaces in emails
    joined = datetime(2016, 12, 1, tzinfo=UTC) + timedelta(
        seconds=rng.randint(0, 5 * 365 * 86400), microseconds=rng.randint(0, 999999)
    )
    return {
        "pk": pk,
        "email": email,
        "first_name": first,
        "last_name": last,
        "phone_number": None if rng.random() < 0.4 else f"05{_digits(rng, 9)}",
        "channel_code": str(rng.randint(1, 20)),
        "erp_code": _digits(rng, 6),
        "date_joined": iso(joined),
        "created_date": iso(joined + timedelta(minutes=3)),
        "modified_date": iso(joined + timedelta(days=rng.randint(0, 60), seconds=7)),
        "gender": rng.choice((None, "female", "male")),
    }


@dataclass(eq=False)
class OrderRecord:
    """One order: ``data`` is the list-shaped JSON object (the mutable state)."""

    id: int
    data: dict[str, Any]
    created: datetime
    modified: datetime
    date_placed: datetime
    ctx: dict[str, Any]
    list_bytes: bytes | None = None
    detail_bytes: bytes | None = None
    verbatim: bool = False  # loaded from documents (Store.load_documents): served as given
    document: dict[str, Any] | None = None  # the detailed view of a verbatim order, if any

    def touch(self, when: datetime) -> None:
        self.modified = when
        self.data["modified_date"] = iso(when)
        self.list_bytes = self.detail_bytes = None


class OrderFactory:
    """Builds list-shaped orders and their detailed views, deterministically from a seed."""

    def __init__(self, seed: int | str) -> None:
        self.seed = seed

    # -- list shape ---------------------------------------------------------
    def new_order(
        self, oid: int, first_item_id: int, created: datetime, modified: datetime, rng: random.Random
    ) -> OrderRecord:
        placed = created - timedelta(seconds=rng.randint(0, 90), microseconds=rng.randint(0, 999999))
        status = rng.choices(STATUS_CODES, _STATUS_WEIGHTS)[0]
        customer_pk = rng.randint(1000, 1400)
        ship_place = rng.randrange(len(_PLACES))
        bill_place = ship_place if rng.random() < 0.8 else rng.randrange(len(_PLACES))
        pay = rng.choices(range(len(_PAYMENTS)), _PAYMENT_WEIGHTS)[0]
        installment_count = 1 if pay or rng.random() < 0.6 else rng.choice((3, 6, 9))
        ctx = {
            "channel": rng.randrange(len(_CHANNELS)),
            "customer": customer_pk,
            "ship_place": ship_place,
            "bill_place": bill_place,
            "ship_addr_pk": 20000 + oid * 2,
            "bill_addr_pk": 20000 + oid * 2 + (ship_place != bill_place),
            "street": rng.choice(_STREETS),
            "title": rng.choice(("Ev", "İş", "Akinon İş", "dolor sit amet")),
            "pay": pay,
            "card": rng.randrange(len(_CARDS)),
            "pos": rng.randrange(len(_POS)),
            "interest_rate": Decimal(0) if installment_count == 1 else Decimal(rng.choice(("1.25", "2.5", "3.75"))),
            "client_type": rng.choice(("default", "default", "ios", "android", "instore")),
            "language_code": rng.choice((None, "tr-tr", "en-us")),
            "tx_id": (
                f"{rng.randint(17000, 24999)}{''.join(rng.choices('ABCDEFGHJKLMNPQRSTUVWXYZ', k=5))}{_digits(rng, 5)}"
            ),
            "auth_code": f"P{_digits(rng, 5)}",
            "hash": f"{rng.getrandbits(128):032x}",
        }
        n_items = rng.choices((1, 2, 3, 4), (5, 3, 2, 1))[0]
        big = rng.random() < 0.05
        items = []
        for i in range(n_items):
            if big and i == 0:
                price = Decimal(rng.randint(100_000_000, 999_999_999)) / 100  # e.g. 1234567.89
            else:
                price = Decimal(rng.randint(999, 99_999)) / 100
            items.append(self._item(first_item_id + i, oid, status, price, rng))
        shipping = Decimal(rng.choice(("0.00", "7.00", "8.50", "12.99")))
        discount = Decimal("0.00") if rng.random() < 0.7 else Decimal(rng.randint(100, 2000)) / 100
        ch = _CHANNELS[ctx["channel"]]
        customer = _customer(self.seed, customer_pk)
        data: dict[str, Any] = {
            "id": oid,
            "number": _digits(rng, 16) if rng.random() < 0.7 else f"{rng.getrandbits(60):015x}",
            "status": status,
            "date_placed": iso(placed),
            "customer": {k: customer[k] for k in ("email", "first_name", "last_name", "phone_number")},
            "shipping_address": self._list_address(customer, ship_place, ctx, ctx["ship_addr_pk"]),
            "billing_address": self._list_address(customer, bill_place, ctx, ctx["bill_addr_pk"]),
            "currency": "try",
            "amount": "0.00",
            "shipping_amount": money(shipping),
            "shipping_tax_rate": None if rng.random() < 0.5 else "18.00",
            "extra_field": {} if rng.random() < 0.6 else {"cargo_line_id": _uuid(rng)},
            "payment_option": _PAYMENTS[pay][0],
            "payment_option_slug": _PAYMENTS[pay][2],
            "bin_number": _digits(rng, 6) if pay == 0 and rng.random() < 0.7 else None,
            "installment": rng.randint(10, 60) if pay == 0 and rng.random() < 0.7 else None,
            "installment_count": installment_count,
            "installment_interest_amount": "0.00",
            "cargo_company": rng.choice(_CARGO)[0] if rng.random() < 0.9 else None,
            "invoice_number": _digits(rng, 5) if rng.random() < 0.6 else rng.choice((None, "")),
            "invoice_date": iso(placed + timedelta(days=1)) if rng.random() < 0.3 else None,
            "e_archive_url": f"http://earsiv.example.com.tr/{rng.getrandbits(64):016x}/"
            if rng.random() < 0.4
            else None,
            "refund_amount": "0.00",
            "discount_refund_amount": "0.00",
            "shipping_refund_amount": "0.00",
            "discount_amount": money(discount),
            "is_send": rng.random() < 0.7,
            "net_shipping_amount": None,
            "shipping_interest_amount": "0.00",
            "tracking_number": _digits(rng, 8)
            if status in ("500", "510", "520", "540", "550")
            else rng.choice((None, _digits(rng, 5))),
            "carrier_shipping_code": None if rng.random() < 0.8 else f"CSC{_digits(rng, 7)}",
            "remote_addr": None
            if rng.random() < 0.2
            else f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "has_gift_box": rng.random() < 0.1,
            "gift_box_note": None,
            "external_status": None,
            "orderitem_set": items,
            "channel": {"name": ch[1], "conf": self._channel_conf(ch)},
            "modified_date": iso(modified),
            "created_date": iso(created),
        }
        if data["has_gift_box"]:
            data["gift_box_note"] = rng.choice(("İyi ki doğdun!", "Mutlu yıllar 🎉", ""))
        for it in items:
            it["tracking_number"] = data["tracking_number"]
            it["invoice_number"] = data["invoice_number"]
            it["e_archive_url"] = data["e_archive_url"]
        rec = OrderRecord(oid, data, created, modified, placed, ctx)
        self.recompute_amount(rec)
        return rec

    def _item(self, item_id: int, oid: int, status: str, price: Decimal, rng: random.Random) -> dict[str, Any]:
        cancelled = status in ("50", "100", "600")
        return {
            "id": item_id,
            "order": oid,
            "product_sku": _digits(rng, 10),
            "status": status if rng.random() < 0.9 else rng.choice(STATUS_CODES),
            "price_currency": "try",
            "price": money(price),
            "tax_rate": rng.choice(("18.00", "18.00", "8.00", "20.00", "1.00")),
            "extra_field": {},
            "price_list": 1,
            "stock_list": rng.choice((1, 1, 2)),
            "cancel_status": rng.choice(("waiting", "completed", "rejected")) if cancelled else None,
            "invoice_number": None,
            "invoice_date": None,
            "e_archive_url": None,
            "installment_interest_amount": "0.00",
            "tracking_number": None,
            "carrier_shipping_code": None,
            "shipping_company": rng.choice(("other", "aras", "yurtici", None)),
            "shipment_code": None,
            "external_status": None,
            "discount_amount": "0.00",
            "retail_price": None if rng.random() < 0.6 else money(price * Decimal("1.25")),
            "attributes": dict(rng.choice(_ATTRS)),
            "attributes_kwargs": {},
            "image": None if rng.random() < 0.7 else f"https://cdn.example-shop.com.tr/products/{_digits(rng, 8)}.jpg",
        }

    @staticmethod
    def _list_address(customer: dict[str, Any], place: int, ctx: dict[str, Any], pk: int) -> dict[str, Any]:
        cc, cname, _, city_pk, city, (t_pk, t_name), (d_pk, d_name), postcode = _PLACES[place]
        return {
            "email": customer["email"],
            "phone_number": customer["phone_number"] or f"05{pk % 10**9:09d}",
            "first_name": customer["first_name"],
            "last_name": customer["last_name"],
            "country": {"name": cname, "code": cc},
            "city": {"id": city_pk, "name": city},
            "line": ctx["street"],
            "title": ctx["title"],
            "township": {"id": t_pk, "name": t_name},
            "district": {"id": d_pk, "name": d_name},
            "postcode": postcode,
            "notes": None,
            "company_name": "",
            "tax_office": "",
            "tax_no": "",
            "e_bill_taxpayer": False,
        }

    @staticmethod
    def _channel_conf(ch: tuple) -> dict[str, Any]:
        pk, _, _, server = ch
        return {
            "username": f"{SECRET}-user-ch{pk}",
            "feature_flags": {},
            "auth_token": f"{SECRET}-token-ch{pk}-9f3c2a71d0",
            "server": server,
            "localized_cancel_mail_subject": {},
            "sales_url": server.split("/", 3)[0] + "//" + server.split("/", 3)[2],
            "password": f"{SECRET}-pw-ch{pk}",
        }

    @staticmethod
    def recompute_amount(rec: OrderRecord) -> None:
        """Amount = items + shipping + shipping interest + installment interest - discount."""
        d = rec.data
        items = sum((Decimal(i["price"]) for i in d["orderitem_set"]), Decimal(0))
        shipping = Decimal(d["shipping_amount"])
        ship_int = Decimal(d["shipping_interest_amount"])
        inst_int = (items * rec.ctx["interest_rate"] / 100).quantize(TWO_PLACES)
        d["installment_interest_amount"] = money(inst_int)
        d["amount"] = money(max(items + shipping + ship_int + inst_int - Decimal(d["discount_amount"]), Decimal(0)))
        net = shipping + ship_int
        if rec.id % 2:  # documented quirk: sometimes a string, sometimes a JSON number
            d["net_shipping_amount"] = money(net)
        else:
            d["net_shipping_amount"] = int(net) if net == net.to_integral_value() else float(net)

    # -- detailed view ------------------------------------------------------
    def detail(self, rec: OrderRecord) -> dict[str, Any]:
        d, ctx = rec.data, rec.ctx
        ch = _CHANNELS[ctx["channel"]]
        customer = _customer(self.seed, ctx["customer"])
        cust = {
            "pk": customer["pk"],
            "channel": ch[0],
            "email": customer["email"],
            "first_name": customer["first_name"],
            "last_name": customer["last_name"],
            "phone_number": customer["phone_number"],
            "is_active": True,
            "channel_code": customer["channel_code"],
            "erp_code": customer["erp_code"],
            "extra_field": {},
            "modified_date": customer["modified_date"],
            "created_date": customer["created_date"],
            "date_joined": customer["date_joined"],
            "email_allowed": False,
            "sms_allowed": False,
            "call_allowed": False,
            "gender": customer["gender"],
            "attributes": {},
            "user_type": None,
            "date_of_birth": None,
        }
        pay = _PAYMENTS[ctx["pay"]]
        cargo = next((c for c in _CARGO if c[0] == d["cargo_company"]), None)
        out: dict[str, Any] = {
            "pk": rec.id,
            "number": d["number"],
            "channel": {
                "pk": ch[0],
                "name": ch[1],
                "channel_type": ch[2],
                "catalog": 1,
                "modified_date": "2022-06-13T10:47:45.640791Z",
                "created_date": "2017-01-22T23:33:29.178976Z",
                "category_tree": None,
                "is_active": True,
                "conf": self._channel_conf(ch),
                "schema": {},
            },
            "status": d["status"],
            "date_placed": d["date_placed"],
            "customer": cust,
            "shipping_address": self._detail_address(
                d["shipping_address"], ctx["ship_place"], ctx["ship_addr_pk"], cust, rec
            ),
            "billing_address": self._detail_address(
                d["billing_address"], ctx["bill_place"], ctx["bill_addr_pk"], cust, rec
            ),
            "currency": d["currency"],
            "amount": d["amount"],
            "shipping_amount": d["shipping_amount"],
            "shipping_tax_rate": d["shipping_tax_rate"],
            "extra_field": d["extra_field"],
            "transaction_set": self._transactions(rec, customer) if ctx["pay"] == 0 else [],
            "payment_option": {
                "pk": pay[0],
                "name": pay[1],
                "slug": pay[3],
                "payment_type": pay[4],
                "sort_order": 0,
                "is_active": True,
                "config": {},
                "translations": {"tr-tr": {"name": pay[5]}},
                "channel": ch[0],
                "modified_date": "2021-11-10T10:06:41.529791Z",
                "created_date": "2017-02-01T14:46:02.110133Z",
            },
            "payment_option_slug": d["payment_option_slug"],
            "bin_number": d["bin_number"],
            "installment": self._installment(rec),
            "installment_count": d["installment_count"],
            "installment_interest_amount": d["installment_interest_amount"],
            "cargo_company": None
            if cargo is None
            else {
                "pk": cargo[0],
                "name": cargo[1],
                "erp_code": cargo[2],
                "shipping_company": cargo[3],
                "modified_date": "2018-08-15T12:11:54.402253Z",
                "created_date": "2017-01-30T14:02:18.165573Z",
            },
            "invoice_number": d["invoice_number"],
            "invoice_date": d["invoice_date"],
            "e_archive_url": d["e_archive_url"],
            "refund_amount": d["refund_amount"],
            "discount_refund_amount": d["discount_refund_amount"],
            "shipping_refund_amount": d["shipping_refund_amount"],
            "discount_amount": d["discount_amount"],
            "cancellation_info": {},
            "status_display": STATUSES[d["status"]],
            "tracking_number": d["tracking_number"],
            "is_send": d["is_send"],
            "cancel_status": "waiting" if d["status"] == "50" else ("completed" if d["status"] == "100" else None),
            "net_shipping_amount": d["net_shipping_amount"],
            "remote_addr": d["remote_addr"],
            "language_code": ctx["language_code"],
            "fundstransfertransaction_set": self._funds_transfer(rec) if ctx["pay"] == 1 else [],
            "has_gift_box": d["has_gift_box"],
            "gift_box_note": d["gift_box_note"],
            "tracking_url": None
            if not d["tracking_number"]
            else f"https://kargotakip.example.com.tr/?code={d['tracking_number']}",
            "external_status": d["external_status"],
            "payondeliverytransaction_set": self._pay_on_delivery(rec) if ctx["pay"] == 2 else [],
            "loyaltytransaction_set": [],
            "bextransaction_set": [],
            "cancellationplan_set": [],
            "cashregistertransaction_set": [],
            "client_type": ctx["client_type"],
            "shipping_interest_amount": d["shipping_interest_amount"],
            "delivery_type": None,
            "notes": None,
            "delivery_range": None,
            "shipping_option_slug": None,
            "segment": None,
            "carrier_shipping_code": d["carrier_shipping_code"],
            "mapping": [
                {
                    "pk": 900 + rec.id,
                    "content_type": 40,
                    "object_id": rec.id,
                    "integration_type": "external_company",
                    "code": f"1-R-2-{180000 + rec.id}",
                    "modified_date": d["created_date"],
                    "created_date": d["created_date"],
                }
            ],
            "ordertransaction_set": [],
            "ordershippinginfo_set": []
            if cargo is None
            else [
                {
                    "pk": 4000 + rec.id,
                    "order": rec.id,
                    "order_number": d["number"],
                    "shipping_company": cargo[3],
                    "send_request": None,
                    "send_response": {},
                    "is_send": bool(d["tracking_number"]),
                    "cargo_label": None,
                    "modified_date": d["modified_date"],
                    "created_date": d["created_date"],
                }
            ],
            "modified_date": d["modified_date"],
            "created_date": d["created_date"],
        }
        return out

    @staticmethod
    def _mapping(pk: int, ct: int, obj: int, code: str) -> list[dict[str, Any]]:
        return [
            {
                "pk": pk,
                "content_type": ct,
                "object_id": obj,
                "integration_type": "external_company",
                "code": code,
                "modified_date": _OLD,
                "created_date": "2017-01-24T10:58:56.765567Z",
            }
        ]

    def _detail_address(
        self, la: dict[str, Any], place: int, pk: int, cust: dict[str, Any], rec: OrderRecord
    ) -> dict[str, Any]:
        cc, cname, tr_name, city_pk, city, (t_pk, t_name), (d_pk, d_name), postcode = _PLACES[place]
        country_pk = _COUNTRY_PK[cc]
        stamp = "2016-12-22T08:50:57.270000Z"
        return {
            "pk": pk,
            "email": la["email"],
            "phone_number": la["phone_number"],
            "first_name": la["first_name"],
            "last_name": la["last_name"],
            "country": {
                "pk": country_pk,
                "is_active": True,
                "name": cname,
                "code": cc,
                "translations": {"tr-tr": {"name": tr_name}},
                "modified_date": "2022-08-15T07:20:28.680740Z",
                "created_date": "2016-12-22T08:50:55.358000Z",
                "mapping": self._mapping(country_pk, 33, country_pk, cc.upper()),
            },
            "city": {
                "pk": city_pk,
                "is_active": True,
                "name": city,
                "country": country_pk,
                "translations": None,
                "priority": None,
                "postcode": None,
                "modified_date": stamp,
                "created_date": stamp,
                "mapping": self._mapping(city_pk + 20, 36, city_pk, f"{cc.upper()}.{city_pk:02d}"),
            },
            "line": la["line"],
            "title": la["title"],
            "township": {
                "pk": t_pk,
                "is_active": True,
                "name": t_name,
                "city": city_pk,
                "postcode": None,
                "modified_date": stamp,
                "created_date": stamp,
                "mapping": self._mapping(t_pk + 7, 34, t_pk, f"{cc.upper()}.{t_pk:05d}"),
            },
            "district": {
                "pk": d_pk,
                "is_active": True,
                "name": d_name,
                "city": city_pk,
                "township": t_pk,
                "postcode": None,
                "zipcode": None,
                "modified_date": stamp,
                "created_date": stamp,
                "mapping": [],
            },
            "postcode": postcode,
            "notes": None,
            "company_name": None,
            "tax_office": None,
            "tax_no": None,
            "e_bill_taxpayer": False,
            "hash_data": rec.ctx["hash"],
            "address_type": "customer",
            "retail_store": None,
            "remote_id": None,
            "identity_number": None,
            "extra_field": {},
            "customer": cust,
            "is_active": True,
            "modified_date": rec.data["created_date"],
            "mapping": [],
        }

    def _installment(self, rec: OrderRecord) -> dict[str, Any] | None:
        d, ctx = rec.data, rec.ctx
        if d["installment"] is None:
            return None
        bank_pk, bank, slug, card_pk, card = _CARDS[ctx["card"]]
        n = d["installment_count"]
        return {
            "pk": d["installment"],
            "card": {
                "pk": card_pk,
                "name": card,
                "bank": {
                    "pk": bank_pk,
                    "name": bank,
                    "slug": slug,
                    "logo": None,
                    "channel": 1,
                    "modified_date": "2017-02-01T14:34:07.916233Z",
                    "created_date": "2017-02-01T14:34:07.916213Z",
                },
                "card_type": {
                    "pk": card_pk - 5,
                    "name": card,
                    "slug": card.lower(),
                    "logo": f"https://cdn.example-shop.com.tr/media/card_types/{card.lower()}.jpg",
                    "channel": 1,
                    "modified_date": "2017-02-01T14:34:08.130132Z",
                    "created_date": "2017-02-01T14:34:08.130112Z",
                },
                "card_payment_type": "credit",
                "cash_payment": 10,
                "installment_payment": 2,
                "slug": card.lower(),
                "three_d_payment": 10,
                "is_commerce_card": False,
                "channel": 1,
                "modified_date": "2017-02-01T14:34:08.139753Z",
                "created_date": "2017-02-01T14:34:08.139728Z",
            },
            "installment_count": n,
            "label": "Peşin" if n == 1 else f"{n} Taksit",
            "interest_rate": f"{ctx['interest_rate']:.6f}",
            "is_active": True,
            "config": {},
            "translations": None,
        }

    def _transactions(self, rec: OrderRecord, customer: dict[str, Any]) -> list[dict[str, Any]]:
        d, ctx = rec.data, rec.ctx
        pos_pk, pos_name, pos_slug, gateway, display, url = _POS[ctx["pos"]]
        user, pw, client = (
            f"{SECRET}-posuser-{pos_pk}",
            f"{SECRET}-pospw-{pos_pk}",
            f"{SECRET}-client-{700655000100 + pos_pk}",
        )
        ext_id = f"{d['number']}{ctx['hash'][:17]}"
        email = customer["email"].strip()
        raw_request = (
            '<?xml version="1.0" encoding="utf-8"?>\n<CC5Request><OrderId>' + ext_id + "</OrderId>"
            "<PayerAuthenticationCode>CAVV</PayerAuthenticationCode><Name>" + user + "</Name><Taksit></Taksit>"
            "<Type>Auth</Type><Expires>**/****</Expires><Number>****************</Number><ClientId>"
            + client
            + "</ClientId><Cvv2Val>***</Cvv2Val><Currency>949</Currency><GroupId></GroupId><TransId></TransId>"
            "<Password>"
            + pw
            + "</Password><IPAddress>"
            + (d["remote_addr"] or "127.0.0.1")
            + "</IPAddress><Email>"
            + email
            + "</Email><Total>"
            + d["amount"]
            + "</Total></CC5Request>"
        )
        bank = _CARDS[ctx["card"]][1]
        raw_response = (
            '<?xml version="1.0" encoding="ISO-8859-9"?>\n<CC5Response>\n <OrderId>' + ext_id + "</OrderId>\n"
            " <GroupId>"
            + ext_id
            + "</GroupId>\n <Response>Approved</Response>\n <AuthCode>"
            + ctx["auth_code"]
            + "</AuthCode>\n <HostRefNum>"
            + d["number"][:12]
            + "</HostRefNum>\n <ProcReturnCode>00</ProcReturnCode>\n"
            " <TransId>" + ctx["tx_id"] + "</TransId>\n <ErrMsg></ErrMsg>\n <Extra>\n  <SETTLEID>385</SETTLEID>\n"
            "  <TERMINALID>00556600</TERMINALID>\n  <MERCHANTID>655000100</MERCHANTID>\n"
            "  <MERCHANTPASSWORD>" + f"{SECRET}-merchant-{pos_pk}" + "</MERCHANTPASSWORD>\n"
            "  <CARDBRAND>VISA</CARDBRAND>\n  <CARDISSUER>" + bank + "</CARDISSUER>\n </Extra>\n</CC5Response>\n"
        )
        nested = {
            k: d[k]
            for k in (
                "number",
                "status",
                "date_placed",
                "currency",
                "amount",
                "shipping_amount",
                "shipping_tax_rate",
                "extra_field",
                "payment_option",
                "payment_option_slug",
                "bin_number",
                "installment",
                "installment_count",
            )
        }
        nested = {
            "pk": rec.id,
            **nested,
            "channel": _CHANNELS[ctx["channel"]][0],
            "customer": ctx["customer"],
            "shipping_address": ctx["ship_addr_pk"],
            "billing_address": ctx["bill_addr_pk"],
        }
        for k in (
            "installment_interest_amount",
            "cargo_company",
            "invoice_number",
            "invoice_date",
            "e_archive_url",
            "refund_amount",
            "discount_refund_amount",
            "shipping_refund_amount",
            "discount_amount",
            "is_send",
        ):
            nested[k] = d[k]
        nested.update(
            {
                "delivery_type": None,
                "net_shipping_amount": d["net_shipping_amount"]
                if isinstance(d["net_shipping_amount"], str)
                else money(Decimal(str(d["net_shipping_amount"]))),
                "shipping_interest_amount": d["shipping_interest_amount"],
                "tracking_number": d["tracking_number"],
                "carrier_shipping_code": d["carrier_shipping_code"],
                "remote_addr": d["remote_addr"],
                "fundstransfertransaction_set": [],
                "has_gift_box": d["has_gift_box"],
                "gift_box_note": d["gift_box_note"],
                "external_status": None,
                "client_type": ctx["client_type"],
                "language_code": ctx["language_code"],
                "notes": None,
                "delivery_range": None,
                "shipping_option_slug": None,
                "segment": None,
                "modified_date": d["modified_date"],
                "checkout_provider_id": None,
                "created_date": d["created_date"],
            }
        )
        return [
            {
                "pk": 50000 + rec.id,
                "transaction_type": "purchase",
                "transaction_id": ctx["tx_id"],
                "auth_code": ctx["auth_code"],
                "pos": {
                    "pk": pos_pk,
                    "name": pos_name,
                    "slug": pos_slug,
                    "gateway": gateway,
                    "config": {"auth": {"username": user, "password": pw, "client_id": client}},
                    "resource_url": url,
                    "three_d_resource_url": None,
                    "channel": 1,
                    "gateway_display": display,
                    "modified_date": "2017-02-02T10:38:15.427494Z",
                    "created_date": "2017-02-01T14:01:28.829319Z",
                },
                "main_pos": None,
                "order": nested,
                "currency": None,
                "user_email": email,
                "raw_request": raw_request,
                "raw_response": raw_response,
                "is_succeeded": True,
                "amount": d["amount"],
                "remote_addr": d["remote_addr"],
                "created_date": d["created_date"],
                "pos_slug": pos_slug,
                "modified_date": d["created_date"],
            }
        ]

    @staticmethod
    def _funds_transfer(rec: OrderRecord) -> list[dict[str, Any]]:
        return [
            {
                "pk": 60000 + rec.id,
                "order": rec.id,
                "amount": rec.data["amount"],
                "currency": "try",
                "bank_account": {
                    "pk": 3,
                    "bank": {"pk": 16, "name": "İş Bankası"},
                    "iban": "TR000006400000112345678901",
                    "holder": "Örnek Mağazacılık A.Ş.",
                },
                "created_date": rec.data["created_date"],
                "modified_date": rec.data["created_date"],
            }
        ]

    @staticmethod
    def _pay_on_delivery(rec: OrderRecord) -> list[dict[str, Any]]:
        return [
            {
                "pk": 70000 + rec.id,
                "order": rec.id,
                "amount": rec.data["amount"],
                "payment_type": "cash",
                "created_date": rec.data["created_date"],
                "modified_date": rec.data["created_date"],
            }
        ]


class Store:
    """All orders, guarded by one re-entrant lock (``store.lock``)."""

    SPAN = timedelta(days=730)

    def __init__(
        self,
        orders: int = 50,
        seed: int | str = 0,
        now: datetime | None = None,
        shape: str = "documented",
        clock_skew: float = 0,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
        self.shape = shape
        self.lock = threading.RLock()
        self.seed = seed
        self.factory = OrderFactory(seed)
        self.records: dict[int, OrderRecord] = {}
        self.version = 0
        self._rng = random.Random(f"omnitron-sandbox:{seed}")
        self._views: dict[Any, tuple[int, list[OrderRecord]]] = {}
        self._last_mutation = datetime.min.replace(tzinfo=UTC)  # real time, not skewed
        self.clock_skew = clock_skew  # seconds the server's clock runs ahead (< 0: behind)
        anchor = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.anchor = anchor.astimezone(UTC)
        self._next_id = 1
        self._next_item_id = 1
        self._generate(orders)

    # -- generation -----------------------------------------------------------
    def _generate(self, n: int) -> None:
        rng = self._rng
        start = self.anchor - self.SPAN
        span_us = int(self.SPAN.total_seconds() * 1e6)
        offsets = sorted(rng.randrange(span_us) for _ in range(n))
        prev_modified: list[datetime] = []
        for off in offsets:
            created = start + timedelta(microseconds=off)
            r = rng.random()
            if r < 0.12:
                modified = created
            elif r < 0.17 and prev_modified and prev_modified[-1] >= created:
                modified = prev_modified[-1]  # bulk update: identical modified_date on several orders
            else:
                room = min((self.anchor - created).total_seconds(), 60 * 86400)
                modified = created + timedelta(seconds=rng.uniform(0, room))
            if rng.random() < 0.04 and modified.replace(microsecond=0) >= created:
                modified = modified.replace(microsecond=0)  # DRF then prints no fraction
            prev_modified.append(modified)
            self._add(created, modified)
            self._next_id += rng.choice((1, 1, 1, 1, 1, 1, 1, 2, 3))  # ids have gaps

    def _add(self, created: datetime, modified: datetime) -> OrderRecord:
        oid = self._next_id
        rec = self.factory.new_order(
            oid, self._next_item_id, created, modified, random.Random(f"{self.seed}:order:{oid}")
        )
        self._next_item_id += len(rec.data["orderitem_set"]) + self._rng.choice((0, 0, 0, 1))
        self.records[oid] = rec
        return rec

    def _changed(self) -> None:
        self.version += 1
        self._views.clear()

    def now(self) -> datetime:
        """The server's clock: real time plus ``clock_skew``."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_skew)

    def _mutation_time(self) -> datetime:
        """The server's clock, made strictly increasing on the real clock, so that a changed skew
        moves the stamps with it (a clock set back stamps earlier, as a real server would)."""
        real = datetime.now(UTC)
        if real <= self._last_mutation:
            real = self._last_mutation + timedelta(microseconds=1)
        self._last_mutation = real
        return real + timedelta(seconds=self.clock_skew)

    # -- mutations ------------------------------------------------------------
    def _pick(self, count: int) -> list[int]:
        ids = sorted(self.records)
        return sorted(self._rng.sample(ids, min(count, len(ids))))

    def modify(self, ids: Iterable[int] | None = None, count: int = 3, at: datetime | None = None) -> list[int]:
        """Bump modified_date to now (or `at`: a change committed late, stamped earlier) and change
        status, one item price (so amount) and tracking."""
        with self.lock:
            ids = self._pick(count) if ids is None else [i for i in ids if i in self.records]
            rng = self._rng
            for oid in ids:
                rec = self.records[oid]
                d = rec.data
                d["status"] = rng.choice([s for s in STATUS_CODES if s != d["status"]])
                item = rng.choice(d["orderitem_set"])
                delta = Decimal(rng.randint(100, 5000)) / 100
                price = Decimal(item["price"])
                item["price"] = money(price + delta if rng.random() < 0.5 or price <= delta else price - delta)
                d["tracking_number"] = _digits(rng, 8)
                for it in d["orderitem_set"]:
                    it["status"] = d["status"]
                    it["tracking_number"] = d["tracking_number"]
                self.factory.recompute_amount(rec)
                rec.touch(at or self._mutation_time())
            if ids:
                self._changed()
            return list(ids)

    def create(self, count: int = 1) -> list[int]:
        with self.lock:
            out = []
            for _ in range(count):
                now = self._mutation_time()
                out.append(self._add(now, now).id)
                self._next_id += 1
            if out:
                self._changed()
            return out

    def delete(self, ids: Iterable[int] | None = None, count: int = 0) -> list[int]:
        with self.lock:
            ids = self._pick(count) if ids is None else list(ids)
            out = [i for i in ids if self.records.pop(i, None) is not None]
            if out:
                self._changed()
            return out

    def mutate(self, modify: int = 0, create: int = 0, delete: int = 0) -> dict[str, list[int]]:
        with self.lock:
            return {
                "modified": self.modify(count=modify) if modify else [],
                "created": self.create(create) if create else [],
                "deleted": self.delete(count=delete) if delete else [],
            }

    # -- reads ------------------------------------------------------------------
    def load_documents(self, orders: Iterable[dict[str, Any]], details: dict[int, dict[str, Any]]) -> None:
        """Serve these list-shaped orders verbatim, and ``details[id]`` as the detailed view of
        order ``id`` (others answer 404). Filters and sorts use ``date_placed`` as their time."""
        with self.lock:
            for order in orders:
                placed = parse_iso(order["date_placed"])
                self.records[order["id"]] = OrderRecord(
                    order["id"],
                    json.loads(json.dumps(order)),
                    placed,
                    placed,
                    placed,
                    {},
                    verbatim=True,
                    document=details.get(order["id"]),
                )
            self._changed()

    def _served(self, view: dict[str, Any]) -> dict[str, Any]:
        if self.shape == "extended":
            return view
        return {k: v for k, v in view.items() if k not in ORDER_DATES}

    def list_bytes(self, rec: OrderRecord) -> bytes:
        b = rec.list_bytes
        if b is None:
            b = rec.list_bytes = dumps(rec.data if rec.verbatim else self._served(rec.data))
        return b

    def detail_bytes(self, oid: int) -> bytes | None:
        with self.lock:
            rec = self.records.get(oid)
            if rec is None:
                return None
            b = rec.detail_bytes
            if b is None:
                if rec.verbatim:
                    if rec.document is None:
                        return None
                    b = rec.detail_bytes = dumps(rec.document)
                else:
                    b = rec.detail_bytes = dumps(self._served(self.factory.detail(rec)))
            return b

    _SORT_ATTR: ClassVar[dict[str, str]] = {
        "id": "id",
        "pk": "id",
        "modified_date": "modified",
        "created_date": "created",
        "date_placed": "date_placed",
    }

    def view(self, sort: tuple[tuple[str, bool], ...], filters: tuple) -> list[OrderRecord]:
        """Filtered, sorted records (cached until the next mutation). Call with the lock held."""
        key = (sort, filters)
        hit = self._views.get(key)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        recs = [r for r in self.records.values() if _matches(r, filters)]
        recs.sort(key=lambda r: r.id)
        for attr, desc in reversed(sort):
            a = self._SORT_ATTR[attr]
            recs.sort(key=lambda r: getattr(r, a), reverse=desc)
        if len(self._views) > 256:
            self._views.clear()
        self._views[key] = (self.version, recs)
        return recs

    def snapshot(self) -> dict[int, str]:
        with self.lock:
            return {oid: iso(r.modified) for oid, r in self.records.items()}

    def ground_truth(self) -> list[dict[str, Any]]:
        """What the store knows of each order, dates included whatever the shape it serves."""
        with self.lock:
            return [
                {
                    "id": r.id,
                    "modified_date": iso(r.modified),
                    "status": r.data["status"],
                    "amount": r.data["amount"],
                    "tracking_number": r.data.get("tracking_number"),
                }
                for r in self.records.values()
            ]


_OPS = {"gte": lambda a, b: a >= b, "gt": lambda a, b: a > b, "lte": lambda a, b: a <= b, "lt": lambda a, b: a < b}
_DATE_ATTR = {"modified_date": "modified", "created_date": "created", "date_placed": "date_placed"}


def _matches(rec: OrderRecord, filters: tuple) -> bool:
    for f in filters:
        kind = f[0]
        if kind == "date":
            _, field, op, value = f
            if not _OPS[op](getattr(rec, _DATE_ATTR[field]), value):
                return False
        elif kind == "status":
            if rec.data["status"] not in f[1]:
                return False
        elif kind == "is_send":
            if rec.data["is_send"] is not f[1]:
                return False
        elif kind == "pk_in":  # noqa: SIM102  (one shape for every filter kind)
            if rec.id not in f[1]:
                return False
    return True
