"""A local fake Akinon Omnitron API for the tap's tests, demos and benchmarks (stdlib only).

    from omnitron_sandbox import Sandbox
    with Sandbox(orders=30, seed=1) as sb:
        sb.url, sb.api_token

CLI: ``python -m omnitron_sandbox --help`` (also the ``omnitron-sandbox`` console script).
"""

from .data import SECRET, SHAPES, STATUS_CODES, STATUSES, Store
from .server import DEFAULT_FAULT_KINDS, FAULT_KINDS, HOSTILE_KINDS, LIST_ORDERS, Sandbox, main

SECRET_MARKER = SECRET

__all__ = [
    "DEFAULT_FAULT_KINDS",
    "FAULT_KINDS",
    "HOSTILE_KINDS",
    "LIST_ORDERS",
    "SECRET",
    "SECRET_MARKER",
    "SHAPES",
    "STATUSES",
    "STATUS_CODES",
    "Sandbox",
    "Store",
    "main",
]
