"""The lenient record-batch decoder the consumer falls back on (carecoord_records.raw_records).

Batches are written byte by byte by tests/raw_records.py, as a hostile or
broken producer (or a damaged disk) would leave them.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from carecoord_records.raw_records import parse
from tests.raw_records import RawRecord, record_batch

TP = TopicPartition("patient-app.reports", 0)


def test_records_come_whole_with_header_keys_that_are_not_text_repaired() -> None:
    data = record_batch(
        [
            RawRecord(b"k", b"one", [(b"event-type", b"T")]),
            RawRecord(None, None, [(b"\xff\xfe", None), (b"", b"")]),
            RawRecord(b"\x00\x01", b"three"),
        ],
        base_offset=40,
    )
    parsed = parse(TP, data, 40)
    assert [(r.offset, r.key, r.value) for r in parsed.records] == [
        (40, b"k", b"one"),
        (41, None, None),
        (42, b"\x00\x01", b"three"),
    ]
    assert parsed.records[1].headers == (("\ufffd\ufffd", None), ("", b""))
    assert (parsed.records[1].serialized_key_size, parsed.records[1].serialized_value_size) == (-1, -1)
    assert parsed.broken == [] and parsed.next_offset == 43


def test_reading_from_inside_a_batch_skips_the_records_before_the_offset() -> None:
    data = record_batch([RawRecord(b"k", b"a"), RawRecord(b"k", b"b"), RawRecord(b"k", b"c")], base_offset=10)
    data += record_batch([RawRecord(b"k", b"d")], base_offset=13)
    parsed = parse(TP, data, 11)
    assert [r.value for r in parsed.records] == [b"b", b"c", b"d"]
    assert parsed.next_offset == 14


def test_a_compressed_batch_is_read_like_any_other() -> None:
    parsed = parse(TP, record_batch([RawRecord(b"k", b"x" * 1000), RawRecord(b"k", b"y")], gzip=True), 0)
    assert [r.value for r in parsed.records] == [b"x" * 1000, b"y"]


def test_a_batch_with_a_wrong_crc_is_broken_by_its_range_with_its_bytes_and_ends_the_read() -> None:
    good = record_batch([RawRecord(b"k", b"a")], base_offset=0)
    bad = bytearray(record_batch([RawRecord(b"k", b"b"), RawRecord(b"k", b"c")], base_offset=1))
    bad[-1] ^= 0xFF  # one flipped bit in the last record
    after = record_batch([RawRecord(b"k", b"d")], base_offset=3)
    parsed = parse(TP, good + bytes(bad) + after, 0)
    assert [r.value for r in parsed.records] == [b"a"]
    [broken] = parsed.broken
    assert (broken.first_offset, broken.last_offset, broken.problem) == (1, 2, "CRC mismatch")
    assert broken.raw == bytes(bad)
    assert parsed.next_offset == 3


def test_a_record_whose_fields_overrun_it_is_a_broken_batch_not_a_crash() -> None:
    record = RawRecord(b"k", b"v")
    data = bytearray(record_batch([record], base_offset=5))
    # Claim a much longer value than the record holds, and mend the CRC so only the record is wrong.
    from aiokafka.record.util import calc_crc32c

    index = data.rindex(b"\x02v")  # varint 1 (zig-zag 2) then the value
    data[index] = 0x7E
    data[17:21] = calc_crc32c(bytes(data[21:])).to_bytes(4, "big")
    parsed = parse(TP, bytes(data), 5)
    assert parsed.records == []
    assert parsed.broken[0].problem.startswith("malformed record")


def test_a_batch_cut_at_the_fetch_size_waits_for_the_next_read() -> None:
    whole = record_batch([RawRecord(b"k", b"a")], base_offset=0)
    cut = record_batch([RawRecord(b"k", b"b" * 100)], base_offset=1)[:50]
    parsed = parse(TP, whole + cut, 0)
    assert [r.value for r in parsed.records] == [b"a"]
    assert parsed.broken == [] and parsed.next_offset == 1


def test_a_control_batch_holds_no_records_but_is_stepped_over() -> None:
    control = record_batch(
        [RawRecord(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")], base_offset=7, attributes=0x20 | 0x10
    )
    parsed = parse(TP, control + record_batch([RawRecord(b"k", b"after")], base_offset=8), 7)
    assert [(r.offset, r.value) for r in parsed.records] == [(8, b"after")]
