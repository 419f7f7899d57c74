"""jobs/compose.py: a run's gateway and the metadata its records carry."""

from __future__ import annotations

from datetime import UTC, datetime

from service_ambitions.config.settings import Overrides, Settings, load_settings
from service_ambitions.core.models import Meta, ReferenceHashes, StageModels
from service_ambitions.jobs.compose import meta_maker, remapped_reference, run_gateway
from service_ambitions.jobs.setup import prepare

WHEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _hashes(tag: str) -> ReferenceHashes:
    return ReferenceHashes(
        plateaus=f"p-{tag}",
        roles=f"r-{tag}",
        catalogues={"data": f"d-{tag}", "technologies": f"t-{tag}"},
        prompts=f"x-{tag}",
    )


def test_a_record_mapped_again_keeps_its_own_reference_but_for_what_was_mapped() -> None:
    prepared = prepare(load_settings(overrides=Overrides(model="offline")))
    data = [c for c in prepared.reference.catalogues if c.field == "data"]
    mixed = remapped_reference(_hashes("old"), _hashes("new"), data)
    assert mixed == ReferenceHashes(
        plateaus="p-old", roles="r-old", catalogues={"data": "d-new", "technologies": "t-old"}, prompts="x-new"
    )
    assert remapped_reference(None, _hashes("new"), data) is None


def test_new_records_say_the_run_models_and_reference_while_mapped_ones_keep_their_origin() -> None:
    prepared = prepare(load_settings(overrides=Overrides(model="offline", seed=3)), stages=("mapping",))
    gateway = run_gateway(prepared, None, lambda event: None)
    data = [c for c in prepared.reference.catalogues if c.field == "data"]
    meta = meta_maker(prepared, lambda: gateway, "run-1", lambda: WHEN, data)

    fresh = meta(2, None, None)
    assert (fresh.run_id, fresh.created, fresh.seed, fresh.dropped_items) == ("run-1", WHEN, 3, 2)
    assert fresh.models.descriptions == "input"
    assert fresh.models.mapping != "input"
    assert fresh.synthetic
    assert fresh.reference is not None
    assert fresh.reference.prompts == prepared.prompts.sha256

    original = Meta(
        run_id="old",
        created=WHEN,
        generator="service-ambitions 0.1",
        models=StageModels(descriptions="openai:a", features="openai:b", mapping="openai:c"),
        seed=None,
        synthetic=False,
        reference=_hashes("old"),
        dropped_items=0,
    )
    recorded = StageModels(descriptions="openai:x", features="openai:y", mapping="openai:z")
    assert meta(1, None, recorded).models == recorded  # read from its snapshot: the models that made it
    again = meta(0, original, None)
    assert again.models.descriptions == "openai:a"
    assert again.models.mapping == fresh.models.mapping
    assert again.reference is not None
    assert again.reference.plateaus == "p-old"
    assert again.reference.catalogues["data"] == fresh.reference.catalogues["data"]


async def test_the_batch_lane_takes_the_settings_sizes_and_waits() -> None:
    from service_ambitions.jobs.compose import batch_lane

    batch = {"enabled": True, "max_requests": 7, "max_wait_s": 1.5, "poll_interval_s": 2, "max_poll_interval_s": 9}
    prepared = prepare(Settings(model="offline", batch={**batch, "max_resubmissions": 4}))
    lane = batch_lane(prepared, None, lambda event: None, detach=True)  # type: ignore[arg-type]
    options = lane.options
    assert (options.max_requests, options.max_wait_s, options.poll_interval_s) == (7, 1.5, 2)
    assert (options.max_poll_interval_s, options.max_resubmissions, options.detach) == (9, 4, True)
    await lane.close()
