"""The calls a batch run leaves waiting: saved at once, read back by the run that collects them."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_ambitions.core.errors import OutputError
from service_ambitions.runs.suspended import SUSPENDED_FILE, SuspendedStore


def test_a_waiting_call_is_read_back_until_it_is_collected(tmp_path: Path) -> None:
    with SuspendedStore(tmp_path) as store:
        store.wait("k1", "features", "batch_1", b'[{"kind": "response"}]', 1)
        store.wait("k2", "mapping", "batch_1", b"[]", 0)
        store.wait("k1", "features", "batch_2", b'[{"kind": "response", "n": 2}]', 2)  # resubmitted: the last wins
        store.collected("k2")
        store.collected("never-waited")  # writes nothing
    again = SuspendedStore(tmp_path)
    assert len(again) == 1
    waiting = again.waiting("k1")
    assert waiting is not None
    assert (waiting.batch_id, waiting.failures, waiting.messages) == ("batch_2", 2, '[{"kind": "response", "n": 2}]')
    assert again.waiting("k2") is None
    assert len((tmp_path / SUSPENDED_FILE).read_text().splitlines()) == 4


def test_a_torn_last_line_is_skipped_and_secrets_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-0123456789")
    with SuspendedStore(tmp_path) as store:
        store.wait("k1", "features", "b", b'["echoed sk-very-secret-0123456789"]', 0)
    with (tmp_path / SUSPENDED_FILE).open("a") as handle:
        handle.write('{"key": "k2", "messages": "[')  # killed mid-line
    store = SuspendedStore(tmp_path)
    assert len(store) == 1
    assert "sk-very-secret" not in (tmp_path / SUSPENDED_FILE).read_text()


def test_a_store_that_cannot_be_written_is_an_output_error(tmp_path: Path) -> None:
    store = SuspendedStore(tmp_path / "missing")
    with pytest.raises(OutputError, match="cannot record a submitted batch request"):
        store.wait("k", "features", None, b"[]", 0)
    assert len(SuspendedStore(tmp_path / "missing")) == 0
