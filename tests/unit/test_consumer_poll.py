"""Header values the consumer cannot read as text: replaced, never allowed to cost the record."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from carecoord_records.fetch import readable_headers


def test_a_header_value_that_is_not_text_is_replaced_and_the_record_kept() -> None:
    good = _record(1, headers=[("event-type", b"TreatmentHoldRequested")])
    hostile = _record(2, headers=[("event-type", b"\xff\xfe"), ("empty", None), ("traceparent", b"00-x")])

    assert readable_headers(good) is good
    repaired = readable_headers(hostile)

    assert (repaired.partition, repaired.offset, repaired.value) == (0, 2, b"{}")
    assert [key for key, _ in repaired.headers] == ["event-type", "empty", "traceparent"]
    # The unreadable value becomes the replacement character's UTF-8, the null one empty, the readable one stays.
    assert dict(repaired.headers) == {"event-type": "\ufffd\ufffd".encode(), "empty": b"", "traceparent": b"00-x"}


def _record(offset: int, headers: list[tuple[str, bytes | None]]) -> ConsumerRecord:
    return ConsumerRecord("safety.holds", 0, offset, 0, 0, b"k", b"{}", None, 1, 2, headers)
