"""The clearinghouse as drop folders, the way many real ones work over SFTP.

    outbound/   files we send; the clearinghouse takes them away
    inbound/    files the clearinghouse leaves for us (271, 835)
    archive/    inbound files we have processed
    rejected/   inbound files we could not read, each with a .reason.txt beside it

Writes are atomic (a hidden temporary file, then a rename), so neither side
ever reads half a file; names starting with a dot are never picked up.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomically(directory: Path, name: str, content: str) -> Path:
    target = directory / name
    temporary = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "w", encoding="ascii", newline="") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, target)
    return target


def ready_files(directory: Path) -> list[Path]:
    """Complete files in a drop folder, oldest first."""
    files = [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def move_to(directory: Path, path: Path) -> Path:
    """Move a file into a folder without overwriting one of the same name."""
    target = directory / path.name
    n = 1
    while target.exists():
        target = directory / f"{path.name}.{n}"
        n += 1
    os.replace(path, target)
    return target


class DropFolders:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.outbound = root / "outbound"
        self.inbound = root / "inbound"
        self.archive = root / "archive"
        self.rejected = root / "rejected"
        for folder in (self.outbound, self.inbound, self.archive, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)

    def send(self, name: str, content: str) -> Path:
        return write_atomically(self.outbound, name, content)

    def received(self) -> list[Path]:
        return ready_files(self.inbound)

    def archive_file(self, path: Path) -> Path:
        return move_to(self.archive, path)

    def reject(self, path: Path, reason: str) -> Path:
        """Set a file aside with why; the reason names the problem, never the file's content."""
        moved = move_to(self.rejected, path)
        write_atomically(self.rejected, f"{moved.name}.reason.txt", reason.rstrip() + "\n")
        return moved
