"""TLS and SASL for the Kafka connections, from configuration.

Local runs and tests talk PLAINTEXT to a broker on loopback; a production
broker wants TLS (``SSL``) and usually SASL on top (``SASL_SSL``). The same
settings serve the service's broker (FastStream) and the topic admin (aiokafka).
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from .config import ServiceSettings

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    password = settings.kafka_sasl_password.get_secret_value()
    if not settings.kafka_sasl_username or not password:
        raise ValueError(
            f"CARECOORD_KAFKA_SECURITY_PROTOCOL={protocol} needs CARECOORD_KAFKA_SASL_USERNAME and _PASSWORD"
        )
    sasl = _SASL[settings.kafka_sasl_mechanism]
    return sasl(settings.kafka_sasl_username, password, ssl_context=context, use_ssl=protocol == "SASL_SSL")


def aiokafka_security_options(settings: ServiceSettings) -> dict[str, Any]:
    """The same settings as keyword arguments of an aiokafka client (the topic admin)."""
    return parse_security(kafka_security(settings))


def _ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    # Verifies the broker's certificate and host name: against the given CA, or the system's.
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    return context
