"""carecoord's shared runtime: what every service runs on.

Layers, each importing only those below it (import-linter checks it): the base
modules (config, errors, faults, privacy, telemetry, logging, persistence,
kafka_security), ``messaging``, ``auth``, ``http`` and the composition root
``service``. The published event contracts are the separate package
``carecoord_contracts``. Nothing service-specific lives here; services import
this package and never one another.
"""
