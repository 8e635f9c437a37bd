"""The local mailbox: an SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message in a Maildir.

Engagement's mail goes here in local runs and tests, and so does its SMS through the
email-to-SMS gateway adapter (<digits>@sms.localhost): nothing leaves the machine, and each
message is one file under <state>/mailbox/Maildir/new (read it with any mail client that opens
a Maildir, `mutt -f <dir>`, or as text). It runs as its own process with a pid file, like
Kafka and PostgreSQL, so `devstack up` can leave it running; `python -m carecoord_devstack.mailbox
--maildir DIR --port N` runs one by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import signal
import sys
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from .process import port_open, read_pid, spawn_daemon, stop_pid, wait_ready

MODULE = "carecoord_devstack.mailbox"


@dataclass
class Mailbox:
    state_dir: Path
    port: int = 1025
    host: str = "127.0.0.1"

    @property
    def maildir(self) -> Path:
        return self.state_dir / "mailbox" / "Maildir"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "mailbox" / "mailbox.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "mailbox" / "mailbox.log"

    def pid(self) -> int | None:
        return read_pid(self._pid_file, MODULE)

    def status(self) -> str:
        return f"running on {self.host}:{self.port}, mail in {self.maildir}" if self.pid() else "stopped"

    def start(self, timeout: float = 30.0) -> bool:
        """Start the server unless it runs already; True when this call started it."""
        if self.pid():
            return False
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.port} is taken by another program: stop it or choose another SMTP port")
        proc = spawn_daemon(
            [
                sys.executable,
                "-m",
                MODULE,
                "--maildir",
                str(self.maildir),
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            pid_file=self._pid_file,
            log_file=self.log_file,
        )
        wait_ready(
            proc,
            lambda: port_open(self.host, self.port),
            name="the mailbox",
            log_file=self.log_file,
            timeout=timeout,
            interval=0.1,
            what=f"the mailbox answering on {self.host}:{self.port}",
        )
        return True

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout=10)
        self._pid_file.unlink(missing_ok=True)
        return True

    def messages(self) -> list[Message]:
        """Every message delivered so far (in key order: by the second it arrived)."""
        # The server makes tmp/, new/ and cur/ before it accepts mail; until then there is no mail.
        if not all((self.maildir / part).is_dir() for part in ("tmp", "new", "cur")):
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        return [box[key] for key in sorted(box.keys())]


async def serve(maildir: Path, host: str, port: int) -> None:
    """Accept mail until SIGTERM/SIGINT; each message is added to the Maildir as it arrives."""
    from aiosmtpd.handlers import Mailbox as MaildirHandler
    from aiosmtpd.smtp import SMTP

    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="mailbox.localhost"), host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"mailbox: SMTP on {host}:{port}, Maildir {maildir}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m " + MODULE, description=__doc__)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)
    for part in ("tmp", "new", "cur"):  # a Maildir; mailbox.Maildir creates these only for a folder it creates
        (args.maildir / part).mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.maildir, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
