"""carecoord's shared library: event contracts and the runtime every service runs on.

Nothing service-specific lives here; services import this package and never
one another.
"""
