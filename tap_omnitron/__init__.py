"""Singer tap for Akinon Omnitron."""
