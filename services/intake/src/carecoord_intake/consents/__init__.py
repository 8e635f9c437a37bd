"""The consent documents a patient signs, versioned: each text is a file in this folder.

A file is ``<document>-<version>.md`` and is never edited once published: a changed text is a
new file and a new entry in ``CURRENT`` (as with the rule files, ADR 0009), so what a patient
signed is always the exact text under the version their signature names. Loading is pure (no I/O
beyond reading this folder, done once at startup).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from carecoord_contracts.common import ConsentDocument

DOCUMENTS_DIR = Path(__file__).parent

# The version of each document a patient signs now. Signing any other version is refused (409).
CURRENT: Mapping[ConsentDocument, str] = MappingProxyType(
    {
        ConsentDocument.ketamine_treatment: "2026.12.0",
        ConsentDocument.telehealth: "2026.12.0",
        ConsentDocument.sms_contact: "2026.12.0",
    }
)

_FILE = re.compile(r"^(?P<document>[a-z_]+)-(?P<version>[0-9A-Za-z.-]+)\.md$")


@dataclass(frozen=True)
class ConsentText:
    document: ConsentDocument
    version: str
    title: str
    text: str
    current: bool


@dataclass(frozen=True)
class ConsentLibrary:
    """Every published version of every document, and which one is current."""

    texts: Mapping[tuple[ConsentDocument, str], ConsentText]

    def current(self, document: ConsentDocument) -> ConsentText:
        return self.texts[(document, CURRENT[document])]

    def all_current(self) -> list[ConsentText]:
        return [self.current(document) for document in ConsentDocument]

    def version(self, document: ConsentDocument, version: str) -> ConsentText | None:
        return self.texts.get((document, version))


def load(directory: Path = DOCUMENTS_DIR) -> ConsentLibrary:
    """Read every ``<document>-<version>.md``; fail at startup when a current version has no file."""
    texts: dict[tuple[ConsentDocument, str], ConsentText] = {}
    for path in sorted(directory.glob("*.md")):
        match = _FILE.match(path.name)
        if match is None or match["document"] not in ConsentDocument.__members__:
            raise ValueError(f"consent file {path.name}: not <document>-<version>.md of a known document")
        document, version = ConsentDocument(match["document"]), match["version"]
        body = path.read_text()
        first = body.splitlines()[0] if body else ""
        if not first.startswith("# "):
            raise ValueError(f"consent file {path.name}: the first line must be the '# title'")
        texts[(document, version)] = ConsentText(
            document, version, first[2:].strip(), body, current=CURRENT.get(document) == version
        )
    missing = [f"{d}-{v}.md" for d, v in CURRENT.items() if (d, v) not in texts]
    if missing:
        raise ValueError(f"current consent documents without a file: {missing}")
    return ConsentLibrary(MappingProxyType(texts))
