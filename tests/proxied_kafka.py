"""A broker whose clients reach it only through a TcpProxy (tests/tcp_proxy.py).

Kafka clients bootstrap, then connect to the address in the broker's metadata;
so the broker gets a second listener, PROXIED, that advertises the proxy's
port. Clients bootstrapping on ``proxy_bootstrap`` go through the proxy for
everything; ``bootstrap`` (the PLAINTEXT listener) stays direct, for admin
and for reading back what landed.

    kafka = ProxiedKafka.fresh(LOCAL / "some-state-dir")   # synchronous: outside the event loop
    proxy = await TcpProxy.start(kafka.proxied_port, port=kafka.proxy_port)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from carecoord_devstack.kafka import Kafka
from carecoord_devstack.scratch import free_ports


@dataclass
class ProxiedKafka(Kafka):
    proxied_port: int = 0  # where the broker listens for proxied clients
    proxy_port: int = 0  # where the proxy listens, and what the broker advertises

    @classmethod
    def fresh(cls, state_dir: Path) -> ProxiedKafka:
        shutil.rmtree(state_dir, ignore_errors=True)
        plain, controller, proxied, proxy = free_ports(4)
        kafka = cls(state_dir, port=plain, controller_port=controller, heap="512m", proxied_port=proxied, proxy_port=proxy)
        kafka.start()
        return kafka

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
                "",
            ]
        )
