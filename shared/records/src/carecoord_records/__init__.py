"""Reading Kafka records so that a record the client cannot decode costs nothing else.

Shared by the services' consumer (``carecoord_shared.messaging.consumer``) and the
operator CLI (``carecoord dlq``, ``carecoord journey``), which must not install the
runtime: ``raw_records`` decodes a partition's record batches leniently by the
record format; ``fetch.SafeFetch`` wraps an aiokafka consumer so that one bad
record never loses or skips another. Depends on aiokafka and structlog only.
"""
