"""The result cache: keys, safe storage, corruption handling, stats, validate and purge."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from diskcache import Cache

from service_ambitions.cache.format import CachedAnswer, CacheEntry, SafeDisk, cache_key, key_scope
from service_ambitions.cache.maintenance import CacheMaintenance
from service_ambitions.cache.store import ResultCache
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend

SCOPE_PARTS = {
    "stage": "features",
    "model": "openai:gpt-4o-mini",
    "endpoint": "https://api.example/v1",
    "settings": {"seed": 1, "temperature": 0.2},
    "output_schema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
}


def test_dict_order_does_not_change_the_key() -> None:
    permuted = {
        **SCOPE_PARTS,
        "settings": {"temperature": 0.2, "seed": 1},
        "output_schema": {"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"},
    }
    assert key_scope(**SCOPE_PARTS) == key_scope(**permuted)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("stage", "mapping"),
        ("model", "openai:gpt-4.1-mini"),
        ("endpoint", "http://127.0.0.1:8000/v1"),
        ("settings", {"seed": 2, "temperature": 0.2}),
        ("output_schema", {"type": "object", "properties": {"a": {"type": "string"}}}),
    ],
)
def test_changing_any_shared_part_changes_the_key(part: str, value: object) -> None:
    base = cache_key(scope=key_scope(**SCOPE_PARTS), instructions="i", prompt="p")  # type: ignore[arg-type]
    changed = cache_key(scope=key_scope(**{**SCOPE_PARTS, part: value}), instructions="i", prompt="p")  # type: ignore[arg-type]
    assert changed != base


def test_changing_any_per_call_part_changes_the_key() -> None:
    scope = key_scope(**SCOPE_PARTS)  # type: ignore[arg-type]
    base = cache_key(scope=scope, instructions="i", prompt="p")
    assert cache_key(scope=scope, instructions="i2", prompt="p") != base
    assert cache_key(scope=scope, instructions="i", prompt="p2") != base
    assert cache_key(scope=scope, instructions="i", prompt="p", history=[{"kind": "request"}]) != base
    assert cache_key(scope=scope, instructions="i", prompt="p") == base


def entry(stage: Stage = Stage.FEATURES, model: str = "offline", created: datetime | None = None) -> CacheEntry:
    return CacheEntry(
        stage=stage,
        model=model,
        created=created or datetime(2026, 1, 1, tzinfo=UTC),
        schema_sha256="s1",
        spend=Spend(requests=1, input_tokens=10, output_tokens=5),
    )


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def store(cache: ResultCache, key: str, **kwargs: object) -> None:
    cache.store(key, entry(**kwargs), output_json=b'{"a":1}', transcript=b'[{"kind":"request"}]', output_schema=SCHEMA)  # type: ignore[arg-type]


def test_round_trip_and_transcript(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "c") as cache:
        assert not cache.lookup("k").found
        store(cache, "k")
        found = cache.lookup("k").answer
        assert isinstance(found, CachedAnswer)
        assert found.entry.spend.input_tokens == 10
        assert found.output_json == b'{"a":1}'
        assert cache.transcript("k") == [{"kind": "request"}]
        assert cache.transcript("missing") is None


def test_directory_is_owner_only(tmp_path: Path) -> None:
    ResultCache(tmp_path / "new" / "cache").close()
    assert stat.S_IMODE((tmp_path / "new" / "cache").stat().st_mode) == 0o700


def test_nothing_is_evicted_by_default(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "c") as cache:
        assert cache._cache.eviction_policy == "none"


def test_safe_disk_refuses_to_pickle() -> None:
    disk = SafeDisk("/tmp")
    with pytest.raises(TypeError):
        disk.put(("tuple", "key"))
    with pytest.raises(TypeError):
        disk.store({"a": 1}, False)


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_planted_pickles_are_never_loaded(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with ResultCache(directory) as cache:
        store(cache, "good")
    with Cache(str(directory)) as plain:  # the default Disk pickles: an attacker's view
        plain.set("r:planted", Boom())
        plain.set(("pickled", "key"), b"x")
    with ResultCache(directory) as cache:
        assert cache.lookup("planted").found
        assert "unreadable" in str(cache.lookup("planted").problem)
        report = CacheMaintenance(cache).validate()
        assert report.good == 1
        assert report.count("corrupt") == 2
        fixed = CacheMaintenance(cache).validate(fix=True)
        assert fixed.removed == 2
        assert CacheMaintenance(cache).validate().problems == []
        assert isinstance(cache.lookup("good").answer, CachedAnswer)
    assert not Path("PWNED").exists()


def test_damaged_rows_are_misses_with_a_reason(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with ResultCache(directory) as cache:
        store(cache, "k")
    connection = sqlite3.connect(directory / "cache.db")
    blob = connection.execute("SELECT value FROM Cache WHERE key = 'r:k'").fetchone()[0]
    tampered = bytes(blob[:-3]) + b"xyz"
    connection.execute("UPDATE Cache SET value = ? WHERE key = 'r:k'", (tampered,))
    connection.commit()
    connection.close()
    with ResultCache(directory) as cache:
        assert str(cache.lookup("k").problem).startswith("corrupt:")


def test_schema_invalid_and_orphans_are_found(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "c") as cache:
        store(cache, "ok")
        cache.store("bad", entry(), output_json=b'{"a":"text"}', transcript=b"[]", output_schema=SCHEMA)
        cache._cache.delete("r:ok")  # leaves its transcript behind
        report = CacheMaintenance(cache).validate()
        assert (report.good, report.count("schema-invalid"), report.count("orphan-transcript")) == (0, 1, 1)
        invalid = next(p for p in report.problems if p.kind == "schema-invalid")
        assert (invalid.key, invalid.reason) == ("r:bad", "a: 'text' is not of type 'integer'")
        CacheMaintenance(cache).validate(fix=True)
        assert CacheMaintenance(cache).validate().problems == []


def test_stats_and_purge_by_stage_model_and_age(tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with ResultCache(tmp_path / "c", clock=lambda: now) as cache:
        store(cache, "a", stage=Stage.MAPPING, model="offline", created=now - timedelta(days=10))
        store(cache, "b", stage=Stage.MAPPING, model="openai:gpt-4o-mini", created=now - timedelta(days=1))
        store(cache, "c", stage=Stage.FEATURES, model="offline", created=now - timedelta(days=1))
        stats = CacheMaintenance(cache).stats()
        assert stats.entries == 3
        assert stats.transcripts == 3
        assert stats.by_stage_model == {
            ("features", "offline"): 1,
            ("mapping", "offline"): 1,
            ("mapping", "openai:gpt-4o-mini"): 1,
        }
        assert stats.oldest == now - timedelta(days=10)
        assert stats.bytes_on_disk > 0

        assert CacheMaintenance(cache).purge(stage="mapping", older_than=timedelta(days=7)) == {
            ("mapping", "offline"): 1
        }
        assert cache.transcript("a") is None
        assert CacheMaintenance(cache).purge(model="offline") == {("features", "offline"): 1}
        assert CacheMaintenance(cache).purge() == {("mapping", "openai:gpt-4o-mini"): 1}
        assert CacheMaintenance(cache).stats().entries == 0
