"""A hostile or damaged cache never touches what it does not own, and never costs a traceback."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import pytest
from diskcache.core import MODE_BINARY
from typer.testing import CliRunner

from service_ambitions.cache.maintenance import CacheMaintenance
from service_ambitions.cache.store import ResultCache
from service_ambitions.cli.app import app

from .conftest import EXAMPLES, read_jsonl

runner = CliRunner()


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A cache filled by an offline run of the examples."""
    result = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "first.jsonl", "--model", "offline"])
    assert result.exit_code == 0, result.output
    return tmp_path / "cache"


def _plant(cache_dir: Path, key: str, filename: str) -> None:
    with sqlite3.connect(cache_dir / "cache.db") as connection:
        connection.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode,"
            " filename, value) VALUES (?, 1, 0, NULL, 0, 0, NULL, 10, ?, ?, NULL)",
            (key, MODE_BINARY, filename),
        )


def test_rows_naming_files_outside_the_cache_are_never_read_written_or_deleted(filled: Path, tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("do not touch")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.val").write_text("not the cache's")
    (filled / "ab" / "cd").mkdir(parents=True)
    link = filled / "ab" / "cd" / ("0" * 28 + ".val")
    link.symlink_to(victim)
    notes = filled / "notes.txt"
    notes.write_text("a user's own file in the cache directory")
    _plant(filled, "r:" + "1" * 64, str(victim))  # absolute
    _plant(filled, "r:" + "2" * 64, "../elsewhere/x.val")  # relative, out
    _plant(filled, "r:" + "3" * 64, "ab/cd/" + "0" * 28 + ".val")  # a link to the victim

    with ResultCache(filled) as cache:
        for digit in "123":
            assert str(cache.lookup(digit * 64).problem).startswith("unreadable: refusing value file")
    stats = runner.invoke(app, ["cache", "stats"])
    assert stats.exit_code == 0, stats.output
    check = runner.invoke(app, ["cache", "validate"])
    assert check.exit_code == 7
    assert "unsafe" in check.stdout
    fixed = runner.invoke(app, ["cache", "validate", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert runner.invoke(app, ["cache", "validate"]).exit_code == 0
    _plant(filled, "r:" + "4" * 64, str(victim))
    assert runner.invoke(app, ["cache", "purge", "--all", "--yes"]).exit_code == 0

    assert victim.read_text() == "do not touch"
    assert (outside / "x.val").read_text() == "not the cache's"
    assert notes.exists()
    assert link.is_symlink()


def _flip(database: Path, seed: int, flips: int = 200) -> None:
    data = bytearray(database.read_bytes())
    rng = random.Random(seed)
    for _ in range(flips):
        data[rng.randrange(100, len(data))] = rng.randrange(256)
    database.write_bytes(bytes(data))


def test_a_damaged_database_is_one_line_then_repaired(filled: Path, tmp_path: Path) -> None:
    database = filled / "cache.db"
    data = bytearray(database.read_bytes())
    for quarter in (1, 2, 3):  # two pages wrecked in three places: the tree itself is hit
        start = len(data) * quarter // 4 // 4096 * 4096
        data[start : start + 4096 * 2] = b"\xff" * (4096 * 2)
    database.write_bytes(bytes(data))
    _flip(database, seed=0, flips=20)  # and a few bytes anywhere
    for command in (["cache", "stats"], ["cache", "validate"], ["cache", "purge", "--stage", "mapping", "--yes"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 7, (command, result.output)
        assert result.stderr.count("\n") == 1
        assert "cache repair" in result.stderr
    run = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "second.jsonl", "--model", "offline"])
    assert run.exit_code == 0, run.output  # damaged entries are recomputed; the run is whole
    assert len(read_jsonl(tmp_path / "second.jsonl")) == 8

    repaired = runner.invoke(app, ["cache", "validate", "--fix"])  # a damaged database is repaired
    assert repaired.exit_code == 0, repaired.output
    assert repaired.stdout.startswith("recovered ")
    recovered, lost = (int(n.replace(",", "")) for n in re.findall(r"(?:recovered|lost) ([\d,]+)", repaired.stdout))
    assert recovered > 100
    assert lost > 0
    assert "the damaged database is kept as" in repaired.stdout
    assert list(filled.glob("cache.db.damaged-*"))
    assert runner.invoke(app, ["cache", "validate"]).exit_code == 0
    stats = runner.invoke(app, ["cache", "stats", "--json"])
    assert stats.exit_code == 0


def test_a_run_on_a_wrecked_database_warns_once_and_goes_on(filled: Path, tmp_path: Path) -> None:
    database = filled / "cache.db"
    data = bytearray(database.read_bytes())
    data[4096 : 4096 * 5] = b"\xff" * (4096 * 4)  # the pages behind the tables' roots
    database.write_bytes(bytes(data))
    run = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "second.jsonl", "--model", "offline"])
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())
    assert text.count("cache: the cache database in") == 1
    assert "the run went on without the cache" in text
    assert "Traceback" not in run.output
    assert len(read_jsonl(tmp_path / "second.jsonl")) == 8


def test_repair_keeps_every_readable_entry(filled: Path) -> None:
    with ResultCache(filled) as cache:
        before = CacheMaintenance(cache).stats().entries
    result = runner.invoke(app, ["cache", "repair", "--json"])  # an undamaged database loses nothing
    assert result.exit_code == 0, result.output
    assert '"lost": 0' in result.stdout
    with ResultCache(filled) as cache:
        assert CacheMaintenance(cache).stats().entries == before


def test_repair_keeps_snapshots_only_beside_the_answers_they_were_built_from(filled: Path) -> None:
    with ResultCache(filled) as cache:
        assert CacheMaintenance(cache).stats().snapshots == 8
    with sqlite3.connect(filled / "cache.db") as connection:
        # One answer of one service is lost (its row gone, as a wrecked page would lose it).
        (key,) = connection.execute("SELECT key FROM Cache WHERE key LIKE 'r:%' LIMIT 1").fetchone()
        connection.execute("DELETE FROM Cache WHERE key = ?", (key,))
    result = runner.invoke(app, ["cache", "repair", "--json"])
    assert result.exit_code == 0, result.output
    with ResultCache(filled) as cache:
        assert CacheMaintenance(cache).stats().snapshots == 7  # the service built from it is asked of its stages again
        assert CacheMaintenance(cache).validate().count("orphan-snapshot") == 0
