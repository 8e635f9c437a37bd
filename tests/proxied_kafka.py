"""A broker whose clients reach it only through a TcpProxy (tests/tcp_proxy.py).

Kafka clients bootstrap, then connect to the address in the broker's metadata;
so the broker gets a second listener, PROXIED, that advertises the proxy's
port. Clients bootstrapping on ``proxy_bootstrap`` go through the proxy for
everything; ``bootstrap`` (the PLAINTEXT listener) stays direct, for admin
and for reading back what landed.

    kafka = ProxiedKafka.fresh(LOCAL / "some-state-dir")   # synchronous: outside the event loop
    proxy = await TcpProxy.start(kafka.proxied_port, port=kafka.proxy_port)

    stack.kafka = ProxiedKafka.instead_of(stack.kafka)      # a whole stack's broker, before stack.up()
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest

from carecoord_devstack.kafka import Kafka
from carecoord_devstack.scratch import free_ports


@dataclass
class ProxiedKafka(Kafka):
    proxied_port: int = 0  # where the broker listens for proxied clients
    proxy_port: int = 0  # where the proxy listens, and what the broker advertises
    # ACLs enforced (add_topic_acl); a resource without any ACL stays open to everyone.
    authorizer: bool = False

    @classmethod
    def fresh(cls, state_dir: Path, *, authorizer: bool = False) -> ProxiedKafka:
        shutil.rmtree(state_dir, ignore_errors=True)
        plain, controller, proxied, proxy = free_ports(4)
        kafka = cls(
            state_dir,
            port=plain,
            controller_port=controller,
            heap="512m",
            proxied_port=proxied,
            proxy_port=proxy,
            authorizer=authorizer,
        )
        kafka.start()
        return kafka

    @classmethod
    def instead_of(cls, kafka: Kafka) -> ProxiedKafka:
        """A stack's broker (same state folder, ports and heap), with the proxied listener added;
        not started (a Stack starts it)."""
        taken = {kafka.port, kafka.controller_port}
        proxied, proxy = [p for p in free_ports(len(taken) + 2) if p not in taken][:2]
        return cls(
            kafka.state_dir,
            port=kafka.port,
            controller_port=kafka.controller_port,
            heap=kafka.heap,
            proxied_port=proxied,
            proxy_port=proxy,
        )

    @property
    def proxy_bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    def _properties(self) -> str:
        replaced = ("listeners=", "advertised.listeners=", "listener.security.protocol.map=")
        lines = [line for line in super()._properties().splitlines() if not line.startswith(replaced)]
        return "\n".join(
            [
                *lines,
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},PROXIED://127.0.0.1:{self.proxied_port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},PROXIED://127.0.0.1:{self.proxy_port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT",
                *(AUTHORIZER if self.authorizer else ()),
                "",
            ]
        )


AUTHORIZER = (
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found=true",
)
# Kafka's protocol enums (org.apache.kafka.common.acl / resource).
TOPIC, LITERAL, DENY = 2, 3, 2
WRITE, ALL = 4, 2


async def add_topic_acl(bootstrap: str, topic: str, *, operation: int, permission: int = DENY) -> None:
    """An ACL for every client of a PLAINTEXT listener (User:ANONYMOUS) on ``topic``.

    aiokafka's admin client has no ACL call; its protocol module has the request."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        request = CreateAclsRequest(TOPIC, topic, LITERAL, "User:ANONYMOUS", "*", operation, permission)
        response = await client.send(client.get_random_node(), request)
        assert all(code == 0 for code, _message in response.creation_responses), response
    finally:
        await client.close()
