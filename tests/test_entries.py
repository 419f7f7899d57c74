"""entries.py: what reading an input yields, without I/O."""

from __future__ import annotations

from service_ambitions.inputs.entries import RAW_PREFIX_CHARS, QuarantineRecord, raw_prefix


def test_raw_prefixes_are_bounded_and_say_how_long_the_line_was() -> None:
    assert raw_prefix("short") == "short"
    long = raw_prefix("x" * (RAW_PREFIX_CHARS + 10))
    assert long.startswith("x" * RAW_PREFIX_CHARS)
    assert long.endswith(f"[{RAW_PREFIX_CHARS + 10:,} characters in all]")


def test_quarantine_records_leave_out_what_they_do_not_have() -> None:
    record = QuarantineRecord(kind="input", line=3, reason="not valid JSON")
    assert record.model_dump_json(exclude_none=True) == '{"kind":"input","line":3,"reason":"not valid JSON"}'
