"""Typed service configuration, read once from the environment (prefix CARECOORD_).

Defaults run locally against `make run`'s stack; every deployment overrides
them through environment variables (see the README's configuration table).
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from carecoord_contracts.services import DEFAULT_HTTP_PORTS
from carecoord_contracts.tokens import DEVELOPMENT_JWT_SECRET


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARECOORD_", extra="ignore")

    service: str = Field(description="The service's name; set by its entrypoint.")
    kafka_bootstrap: str = "127.0.0.1:19092"
    # TLS and SASL to the broker (carecoord_shared.kafka_security); PLAINTEXT on loopback only.
    kafka_security_protocol: str = Field(default="PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    kafka_sasl_mechanism: str = Field(default="SCRAM-SHA-512", pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$")
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    database_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 0
    log_level: str = "INFO"
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    # The process's event loop: asyncio's own, or uvloop (libuv). asyncio by default because it measured
    # cheaper here: make bench --headline, alternated, cost 32-33 ms of CPU per report on asyncio and
    # 38-39 on uvloop (maximum 47-49 vs 37-42 reports/s; README "Benchmarks"). Kept to measure again.
    event_loop: str = Field(default="asyncio", pattern="^(asyncio|uvloop)$")
    # Consumer: how long a dead instance keeps its partitions before the group moves on.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    # Consumer policy for transient failures before a message is dead-lettered.
    handler_max_attempts: int = 5
    handler_backoff_initial_s: float = 0.2
    handler_backoff_max_s: float = 5.0
    # Most events handled in one database transaction (and one offset commit) when there is a backlog.
    consumer_max_batch: int = Field(default=200, ge=1, le=5000)
    # A partition whose position has not moved for this long while records wait is reported stalled.
    consumer_stall_after_s: float = Field(default=30.0, gt=0)
    # How often parked patients whose first event needs no fix are retried (messaging.parking).
    parked_retry_s: float = Field(default=30.0, gt=0)
    # Outbox relay: committed rows are handed over and sent at once; the polling pass (this often, or at
    # once when the fast path defers a row) takes what it defers, other instances' rows and a crash's.
    outbox_poll_interval_s: float = 1.0
    outbox_batch_size: int = 500
    # How long the relay's producer waits for the broker to acknowledge a batch (aiokafka's
    # request_timeout_ms, also its batches' expiry): past it the batch fails for good and
    # the relay sends its rows again in a later pass.
    outbox_request_timeout_ms: int = Field(default=40_000, gt=0)
    # Pruning (carecoord_shared.messaging.retention): sent outbox rows after this many days;
    # inbox rows after this many, which must cover the longest a record can stay on a consumed
    # topic: retention.ms 30 days + segment.ms 1 day + a 1-day margin = 32 (the service refuses
    # less); 37 leaves room to raise a topic's retention by a few days without touching this.
    outbox_retention_days: float = Field(default=7.0, gt=0)
    inbox_retention_days: float = Field(default=37.0, gt=0)
    # Idempotency-Key records (carecoord_shared.http.idempotency) are kept this long: a retry
    # with the same key later than this runs as a new request.
    idempotency_retention_days: float = Field(default=2.0, gt=0)
    # Spans as JSON lines in <dir>/<service>.jsonl (local runs, tests); OTLP uses OTEL_EXPORTER_OTLP_ENDPOINT.
    traces_dir: str = ""
    # Zipkin's span endpoint (the trace UI `make run` starts), e.g. http://127.0.0.1:9411/api/v2/spans.
    zipkin_endpoint: str = ""
    # Bearer tokens. Production: the identity provider's PEM public key (RS256/ES256),
    # and then no shared secret is accepted. Development and tests: HS256 with this secret.
    auth_jwt_public_key: str = ""
    auth_jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)
    auth_issuer: str = "carecoord"
    auth_audience: str = "carecoord"
    # Names of failure points to crash at (tests of crash safety only), comma-separated.
    crash_at: str = ""
    # Failure points that raise a transient database error N times (fault tests only): point@detail*N, comma-separated.
    transient_at: str = ""

    def model_post_init(self, __context: object) -> None:
        if not self.database_url:
            self.database_url = f"postgresql+asyncpg://{self.service}:{self.service}@127.0.0.1:15432/{self.service}"
        if not self.http_port:
            self.http_port = DEFAULT_HTTP_PORTS.get(self.service, 8000)

    @property
    def uses_development_token_secret(self) -> bool:
        return not self.auth_jwt_public_key and self.auth_jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET

    @property
    def consumer_group(self) -> str:
        return f"carecoord.{self.service}"
