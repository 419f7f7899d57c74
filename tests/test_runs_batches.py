"""A batch run's batches as its events tell them, and what `runs show` adds to the manifest."""

from __future__ import annotations

from service_ambitions.core.events import BatchSubmitted, BatchUpdated, CallStarted
from service_ambitions.core.models import Stage
from service_ambitions.runs.tally import Tally


def test_each_batch_as_last_seen_in_the_order_submitted() -> None:
    events = [
        BatchSubmitted(batch_id="b1", model="openai:gpt-4o-mini", requests=3, status="validating"),
        BatchSubmitted(batch_id="b2", model="openai:gpt-4o-mini", requests=1),
        CallStarted(stage=Stage.FEATURES),
        BatchUpdated(batch_id="b1", status="in_progress"),
        BatchUpdated(batch_id="b1", status="expired", ended=True, succeeded=2, failed=0, unrun=1),
        BatchUpdated(batch_id="unknown", status="completed", ended=True),
        BatchUpdated(batch_id="b2", status="failed", ended=True, succeeded=0, failed=1, message="bad line"),
    ]
    rows = list(Tally.of(events).batches.values())
    assert [(r.batch_id, r.status, r.ended) for r in rows] == [("b1", "expired", True), ("b2", "failed", True)]
    assert (rows[0].succeeded, rows[0].unrun) == (2, 1)
    assert rows[1].message == "bad line"
    assert Tally.of([]).batches == {}
