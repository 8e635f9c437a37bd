"""Dead letters: list them with their reasons, show one, replay chosen ones after a fix.

A replay publishes the letter's original bytes, with its original key, to the
partition it was first read from, with a ``replay-of`` header naming the
letter (``deadletter.<service>/<partition>/<offset>``). That header is the
record of the replay: it lives on the topic itself, next to the message it
replayed, so `dlq list` can show which letters were replayed (and where) and
`dlq replay` skips them unless told ``--force``.

Repeating a replay is harmless anyway for every letter that carries a valid
envelope: consumers claim the event id in their inbox in the same transaction
as their writes, so a second successful delivery changes nothing. A letter
whose bytes are not an envelope (``invalid_envelope``) has no event id to
deduplicate on; it fails the same way again unless the consumer changed.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from carecoord_contracts import Envelope
from carecoord_contracts.deadletter import DeadLetter
from carecoord_contracts.topics import dead_letter_topic

from .errors import OperatorError
from .kafka import Broker, header

REPLAY_OF = "replay-of"
REPLAYED_AT = "replayed-at"


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass
class Letter:
    at: Position  # where the dead letter itself is
    letter: DeadLetter
    replays: list[tuple[Position, str | None]] = field(default_factory=list)  # (where, when)
    replay_of: str | None = None  # this message was itself a replay of that letter

    @property
    def original(self) -> Position:
        return Position(self.letter.original_topic, self.letter.original_partition, self.letter.original_offset)

    def as_json(self, *, with_detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.letter.service,
            "offset": self.at.offset,
            "letter": str(self.at),
            "reason": self.letter.reason,
            "event_type": self.letter.event_type,
            "event_id": self.letter.event_id,
            "original": str(self.original),
            "original_key": _key_text(self.letter.original_key_b64),
            "dead_lettered_at": self.letter.dead_lettered_at.isoformat(),
            "replay_of": self.replay_of,
            "replays": [{"to": str(pos), "at": when} for pos, when in self.replays],
        }
        if with_detail:
            out["detail"] = self.letter.detail
            out["original_value_bytes"] = len(self.letter.original_value())
        return out


async def read_letters(broker: Broker, services: Iterable[str]) -> list[Letter]:
    letters: list[Letter] = []
    for record in await broker.records(dead_letter_topic(s).name for s in services):
        try:
            letter = DeadLetter.model_validate_json(record.value or b"")
        except ValidationError:
            continue  # not written by a carecoord dead-letterer: nothing to replay
        letters.append(Letter(Position(record.topic, record.partition, record.offset), letter))
    await _attach_replays(broker, letters)
    return letters


async def _attach_replays(broker: Broker, letters: list[Letter]) -> None:
    if not letters:
        return
    replays: dict[str, list[tuple[Position, str | None]]] = defaultdict(list)
    replayed_positions: dict[Position, str] = {}
    for record in await broker.records({letter.letter.original_topic for letter in letters}):
        of = header(record, REPLAY_OF)
        if of:
            position = Position(record.topic, record.partition, record.offset)
            replays[of].append((position, header(record, REPLAYED_AT)))
            replayed_positions[position] = of
    for letter in letters:
        letter.replays = replays.get(str(letter.at), [])
        letter.replay_of = replayed_positions.get(letter.original)


def select(
    letters: list[Letter], *, offsets: list[int], reason: str | None, force: bool
) -> tuple[list[Letter], list[Letter]]:
    """The letters to replay and the ones skipped because they were replayed already."""
    if not offsets and not reason:
        raise OperatorError("Choose the letters to replay: --offset N (repeatable) and/or --reason REASON.")
    known = {letter.at.offset for letter in letters}
    missing = sorted(set(offsets) - known)
    if missing:
        raise OperatorError(f"No dead letter at offset(s) {missing} (see `carecoord dlq list`).")
    chosen = [
        letter
        for letter in letters
        if (not offsets or letter.at.offset in offsets) and (reason is None or letter.letter.reason == reason)
    ]
    if not chosen:
        raise OperatorError("No dead letter matches that selection (see `carecoord dlq list`).")
    skipped = [letter for letter in chosen if letter.replays and not force]
    return [letter for letter in chosen if letter not in skipped], skipped


async def replay(broker: Broker, letter: Letter) -> Position:
    """Publish the original message again, where it was first read, marked as a replay of the letter."""
    d = letter.letter
    if d.original_truncated:
        raise OperatorError(
            f"Dead letter {letter.at} kept only the start of a {d.original_size}-byte message: it cannot be replayed."
        )
    headers = _event_headers(d.original_value())
    headers[REPLAY_OF] = str(letter.at)
    headers[REPLAYED_AT] = datetime.now(UTC).isoformat()
    meta = await broker.publish(
        d.original_topic,
        d.original_value(),
        key=base64.b64decode(d.original_key_b64) if d.original_key_b64 else None,
        partition=d.original_partition,
        headers=headers,
    )
    return Position(meta.topic, meta.partition, meta.offset)


def _event_headers(value: bytes) -> dict[str, str]:
    # The dead letter keeps the bytes but not the headers; the routing ones are
    # rebuilt from the envelope when there is one.
    try:
        return Envelope.model_validate_json(value).headers()
    except ValidationError:
        return {}


def _key_text(key_b64: str | None) -> str | None:
    if key_b64 is None:
        return None
    # Business topics are keyed by the pseudonymous patient id; any other key is not printed.
    try:
        raw = base64.b64decode(key_b64)
    except binascii.Error:
        return "<undecodable>"
    try:
        return str(uuid.UUID(raw.decode()))
    except (UnicodeDecodeError, ValueError):
        return f"<{len(raw)} bytes, not a patient id>"
