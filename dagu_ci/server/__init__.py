"""Everything about talking to a Dagu server: its versions' differences (capabilities),
one bounded HTTP exchange (transport), the connection with auth, retries and version
detection (client), the typed endpoints on it (api) and the events stream.

Importing this package costs nothing: `capabilities` needs no third-party module, and
the rest is imported where it is used.
"""
