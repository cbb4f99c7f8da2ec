"""Everything about talking to a Dagu server: its versions' differences (capabilities),
HTTP with retries (transport), typed endpoints (client) and the events stream.

Importing this package costs nothing: `capabilities` needs no third-party module, and
the rest is imported where it is used.
"""
