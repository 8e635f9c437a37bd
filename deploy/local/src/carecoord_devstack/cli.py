"""`devstack`: start, stop and inspect the local stack (what `make run` drives).

devstack up        Kafka + PostgreSQL + topics + the local mailbox, left running
devstack run       all of it plus the six services; Ctrl-C stops everything
devstack status    what runs
devstack down      stop everything this checkout started
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from carecoord_contracts.topics import SERVICES

from .paths import LOCAL
from .stack import Stack

# A setting so that tests can drive the command against a scratch folder.
STATE_DIR = Path(os.environ.get("CARECOORD_DEVSTACK_STATE") or LOCAL / "stack")


def _say(message: str) -> None:
    print(message, flush=True)


def run(stack: Stack) -> int:
    started = stack.up(_say)
    started["zipkin"] = stack.zipkin.start()
    _say(f"Zipkin      {stack.zipkin.url}/zipkin/ (trace UI)")
    stop = threading.Event()
    # Terminals send Ctrl-C to the whole process group; services shut down on
    # it by themselves, we make sure nothing is left and then stop the infra.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _say("starting the services ...")
        for name in SERVICES:
            stack.services[name].start()
        for name in SERVICES:
            stack.services[name].wait_ready()
        _say(_banner(stack))
        while not stop.wait(1.0):
            dead = [s.name for s in stack.services.values() if not s.running()]
            if dead:
                _say(f"service(s) {', '.join(dead)} exited; see {STATE_DIR / 'logs'} — stopping everything")
                return 1
        return 0
    except Exception as exc:
        _say(f"error: {exc}")
        return 1
    finally:
        _say("stopping the services ...")
        stack.stop_services()
        if started["zipkin"]:
            stack.zipkin.stop()
        if started["mailbox"]:
            stack.mailbox.stop()
        if started["kafka"]:
            _say("stopping Kafka ...")
            stack.kafka.stop()
        if started["postgres"]:
            _say("stopping PostgreSQL ...")
            stack.postgres.stop()
        _say("stopped.")


def _banner(stack: Stack) -> str:
    rows = "\n".join(
        f"  {s.name:<11} {s.url}   (API docs {s.url}/docs, log {os.path.relpath(s.log_file, LOCAL.parent)})"
        for s in stack.services.values()
    )
    return f"""
carecoord is running.
  Kafka       {stack.kafka.bootstrap}
  PostgreSQL  127.0.0.1:{stack.postgres.port} (one database and role per service)
  Traces      {stack.zipkin.url}/zipkin/ (every report is one trace across the services)
  Mail        SMTP {stack.mailbox.host}:{stack.mailbox.port}; every message sent (email, and SMS through the
              local email-to-SMS gateway) is a file in {stack.mailbox.maildir}/new
{rows}

Drive the headline flow from another terminal: README.md, "Drive it by hand".
Every API call needs a bearer token; a development one (this stack only):
  .venv/bin/carecoord token --role clinician --subject dr-lee --state CO
Or let the operator's command do it all: .venv/bin/carecoord demo
Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "run", "status", "down", "fetch"])
    args = parser.parse_args(argv)
    stack = Stack(STATE_DIR, with_zipkin=True)
    try:
        if args.command == "fetch":
            from .kafka import ensure_jars
            from .paths import ZIPKIN_LIB, ZIPKIN_POM

            # Says something only when it fetches (a first run): nothing to report otherwise.
            ensure_jars()
            ensure_jars(ZIPKIN_LIB, ZIPKIN_POM, what="Zipkin's jar")
        elif args.command == "up":
            stack.up(_say)
        elif args.command == "run":
            return run(stack)
        elif args.command == "status":
            _say(f"PostgreSQL  {stack.postgres.status()}\nKafka       {stack.kafka.status()}")
            _say(f"Mailbox     {stack.mailbox.status()}")
            _say(f"Zipkin      {'running on ' + stack.zipkin.url if stack.zipkin.pid() else 'stopped'}")
        elif args.command == "down":
            stack.down()
            _say("stopped.")
    except Exception as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
