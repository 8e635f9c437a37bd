"""Reliable messaging over Kafka: transactional outbox, inbox deduplication,
and a consumer policy that commits offsets only after the handler's
transaction committed and dead-letters what cannot be processed."""
