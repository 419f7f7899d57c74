"""cache_format.py: keys, sealed blobs and the value files a row may name."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_ambitions.cache.format import UnsafeRow, cache_key, key_scope, own_value_file, seal, unseal


def test_keys_ignore_dict_order_and_change_with_every_part() -> None:
    scope = key_scope(stage="features", model="m", endpoint=None, settings={"a": 1, "b": 2}, output_schema={"x": 1})
    same = key_scope(stage="features", model="m", endpoint=None, settings={"b": 2, "a": 1}, output_schema={"x": 1})
    assert scope == same
    key = cache_key(scope=scope, instructions="i", prompt="p")
    assert key != cache_key(scope=scope, instructions="i", prompt="q")
    assert key != cache_key(scope=scope, instructions="i", prompt="p", history=[{"role": "user"}])


def test_a_sealed_blob_opens_only_whole() -> None:
    blob = seal(b'{"ok": true}')
    assert unseal(blob) == b'{"ok": true}'
    with pytest.raises(ValueError, match=r"checksum mismatch|damaged"):
        unseal(blob[:-3] + b"xyz")
    with pytest.raises(ValueError, match="not an entry written by service-ambitions"):
        unseal(b"anything else")


def test_only_diskcache_shaped_value_files_are_the_caches_own(tmp_path: Path) -> None:
    good = "ab/cd/" + "0" * 28 + ".val"
    assert own_value_file(tmp_path, good) == str(tmp_path / good)
    for bad in ("/etc/passwd", "../x.val", "ab/cd/../../x.val", "notes.txt", None):
        with pytest.raises(UnsafeRow):
            own_value_file(tmp_path, bad)
