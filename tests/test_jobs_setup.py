"""jobs/setup.py: a prepared job and what identifies its runs."""

from __future__ import annotations

from service_ambitions.config.settings import Overrides, Settings, load_settings
from service_ambitions.core.models import Stage
from service_ambitions.jobs.setup import prepare


def test_a_run_identity_names_each_part_that_affects_results() -> None:
    first = prepare(load_settings(overrides=Overrides(model="offline")))
    other_seed = prepare(load_settings(overrides=Overrides(model="offline", seed=7)))
    one, two = first.identity("run"), other_seed.identity("run")
    assert one.fingerprint == first.fingerprint != two.fingerprint
    assert {name for name in one.parts if one.parts[name] != two.parts[name]} == {"seed"}
    assert one.command == "run"
    assert "api_key" not in str(one.settings).lower()


def test_preparing_resolves_only_the_stages_asked_for() -> None:
    prepared = prepare(load_settings(overrides=Overrides(model="offline")), stages=("mapping",))
    assert set(prepared.models) == {Stage.MAPPING}
    assert prepared.synthetic


def test_prompt_cache_marks_the_shared_prefix_and_changes_no_cache_key() -> None:
    from service_ambitions.config.settings import load_settings
    from service_ambitions.jobs.setup import prepare
    from service_ambitions.llm.keys import key_settings

    plain = prepare(load_settings(overrides=Overrides(model="offline")))
    cached = prepare(Settings(model="offline", prompt_cache="1h"))
    assert "cache" not in plain.model_settings()
    assert cached.model_settings()["cache"] == {"messages": False, "retention": "1h"}
    assert prepare(Settings(model="offline", prompt_cache=True)).model_settings()["cache"] == {"messages": False}
    assert key_settings(cached.model_settings()) == key_settings(plain.model_settings())  # no call is asked again
