"""One spend type: addition, the unknown price, its JSON form, and files written before it."""

from __future__ import annotations

import json
from decimal import Decimal

from pydantic import TypeAdapter

from service_ambitions.cache.format import CacheEntry, CallGroup
from service_ambitions.core.events import CallFailed, CallFinished, Event, ServiceCompleted, ServiceFailed
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend
from service_ambitions.runs.journal import RunCounts
from service_ambitions.runs.tally import Tally


def test_addition_zero_and_an_unknown_price() -> None:
    one = Spend.priced(Decimal("0.25"), requests=1, input_tokens=100, output_tokens=10)
    unknown = Spend.priced(None, requests=1, input_tokens=5)
    assert one + Spend() == one
    total = one + unknown + one
    assert (total.requests, total.input_tokens, total.output_tokens) == (3, 205, 20)
    assert (total.cost_usd, total.unpriced, total.cost) == (Decimal("0.50"), 1, None)
    assert (one + one).cost == Decimal("0.50")


def test_json_keeps_money_exact_and_reads_back() -> None:
    spend = Spend(requests=1, cost_usd=Decimal("0.000123456789"), batch_cost_usd=Decimal("0.1"))
    data = json.loads(spend.model_dump_json())
    assert data["cost_usd"] == "0.000123456789"
    assert Spend.model_validate_json(spend.model_dump_json()) == spend
    assert spend.batch_saved_usd == Decimal("-0.1")


def test_files_written_before_the_spend_type_still_read() -> None:
    event = TypeAdapter(Event).validate_json(
        '{"type":"call_finished","stage":"features","model":"m","requests":2,"input_tokens":10,'
        '"output_tokens":3,"cache_read_tokens":4,"reasoning_tokens":0,"cost_usd":"0.5","batch":true,'
        '"live_cost_usd":"1.0","latency_ms":1.0}'
    )
    assert isinstance(event, CallFinished)
    assert (event.spend.requests, event.spend.cache_read_tokens, event.spend.cost) == (2, 4, Decimal("0.5"))
    assert event.spend.batch_saved_usd == Decimal("0.5")
    failed = TypeAdapter(Event).validate_json(
        '{"type":"call_failed","stage":"mapping","model":"m","requests":1,"input_tokens":1,"output_tokens":1,'
        '"cost_usd":null,"reason":"x"}'
    )
    assert isinstance(failed, CallFailed)
    assert (failed.spend.unpriced, failed.spend.cost) == (1, None)
    entry = CacheEntry.model_validate(
        {
            "stage": "features",
            "model": "m",
            "created": "2026-01-01T00:00:00Z",
            "schema_sha256": "x",
            "usage": {"requests": 1, "input_tokens": 7, "output_tokens": 2},
            "cost_usd": "0.01",
        }
    )
    assert (entry.spend.input_tokens, entry.spend.cost) == (7, Decimal("0.01"))
    group = CallGroup.model_validate({"stage": "mapping", "model": "m", "calls": 3, "requests": 3, "cost_usd": None})
    assert (group.spend.requests, group.spend.unpriced) == (3, 3)
    counts = RunCounts.model_validate({"services_completed": 1, "requests": 4, "cost_usd": "0.2", "unpriced_calls": 1})
    assert (counts.spend.requests, counts.spend.cost_usd, counts.spend.unpriced) == (4, Decimal("0.2"), 1)


def test_one_fold_gives_the_totals_the_rows_and_the_failures() -> None:
    spend = Spend.priced(Decimal("0.1"), requests=1, input_tokens=10, output_tokens=1)
    events: list[Event] = [
        CallFinished(service_id="a", stage=Stage.DESCRIPTIONS, model="m1", spend=spend),
        CallFinished(service_id="a", stage=Stage.FEATURES, model="m2", spend=spend, cached=True),
        CallFailed(service_id="b", stage=Stage.FEATURES, model="m2", spend=spend, reason="bad"),
        CallFailed(service_id="b", stage=Stage.FEATURES, model="m2", spend=Spend(), reason="never sent"),
        ServiceFailed(service_id="b", stage=Stage.FEATURES, reason="bad"),
        ServiceFailed(service_id="b", stage=Stage.FEATURES, reason="bad again"),  # a resumed segment failed it too
        ServiceFailed(service_id="c", stage=Stage.MAPPING, reason="x"),
        ServiceCompleted(service_id="c", features=1, dropped_items=0),  # done by a later segment
    ]
    tally = Tally.of(events, by_service=True)
    assert (tally.totals.calls, tally.totals.cached, tally.failed_calls) == (2, 1, 1)
    assert tally.spend == spend + spend
    assert tally.saved == Decimal("0.1")
    assert [row.key for row in tally.models.values()] == ["m1", "m2"]
    assert tally.stage(Stage.FEATURES).spend == spend  # the billed failure; the hit is saved, not spent
    assert tally.services is not None
    assert tally.services["b"].failed_calls == 1
    assert (tally.failed, tally.failures["b"].reason) == (1, "bad again")
    stages = tally.stage(Stage.FEATURES), tally.stage(Stage.MAPPING)
    assert (tally.totals.failures, stages[0].failures, stages[1].failures) == (1, 1, 0)
    counts = RunCounts.from_tally(tally)
    assert (counts.services_failed, counts.spend) == (1, tally.spend)
