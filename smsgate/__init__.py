"""smsgate: an on-premise SMS server for small clinics."""

__version__ = "0.1.0"
