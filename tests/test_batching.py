"""Batch mode's lane: requests through pydantic-ai's batching, waiting calls saved, parked and resumed."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelRequest, ModelResponse, UserPromptPart
from pydantic_ai.models import Model

from service_ambitions.core.events import BatchSubmitted, BatchUpdated, Event
from service_ambitions.core.models import Stage
from service_ambitions.llm.batching import BatchLane, BatchOptions, batch_id_of
from service_ambitions.llm.keys import OutputType
from service_ambitions.llm.offline import offline_model
from service_ambitions.llm.structured import Exchange, ask_structured


class _Answer(BaseModel):
    text: str


class _Waiting:
    """The run's record of waiting calls, in memory."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[str, int]] = {}
        self.collected_keys: list[str] = []
        self.writes = 0

    def waiting(self, key: str) -> Any:
        found = self.saved.get(key)
        if found is None:
            return None

        class Saved:
            messages, failures = found

        return Saved()

    def wait(self, key: str, stage: Stage, batch_id: str | None, messages: bytes, failures: int) -> None:
        self.saved[key] = (messages.decode(), failures)
        self.writes += 1

    def collected(self, key: str) -> None:
        self.collected_keys.append(key)


def _ticket(batch_id: str, status: str) -> ModelResponse:
    batch = {"id": batch_id, "status": status}
    return ModelResponse(
        parts=[],
        state="suspended",
        provider_response_id=f"batch:{batch_id}:c",
        provider_details={"batch": {"batch": batch, "custom_id": "c"}},
    )


async def test_the_offline_model_answers_through_an_in_memory_batch_and_tells_of_it() -> None:
    events: list[Event] = []
    lane = BatchLane(BatchOptions(max_wait_s=0.01), _Waiting(), events.append)
    model = lane.wrap(offline_model(), "offline")
    exchange = Exchange()

    async def on_suspended(exchange: Exchange, response: ModelResponse) -> None:
        await lane.suspended("key", Stage.DESCRIPTIONS, model, exchange, response)

    output = await ask_structured(
        model,
        OutputType.of(_Answer).tool,
        instructions="Answer.",
        prompt="Say something.",
        exchange=exchange,
        on_suspended=on_suspended,
    )
    await lane.close()
    assert isinstance(output, _Answer)
    assert exchange.usage.requests == 1
    assert [m for m in exchange.messages if isinstance(m, ModelResponse) and m.state == "suspended"] == []
    assert batch_id_of(exchange.messages[-1]) is not None  # the answer names its batch
    submitted = [e for e in events if isinstance(e, BatchSubmitted)]
    ended = [e for e in events if isinstance(e, BatchUpdated) and e.ended]
    assert len(submitted) == len(ended) == 1
    assert ended[0].succeeded == 1


async def test_a_detaching_lane_saves_the_call_then_parks_it() -> None:
    waiting = _Waiting()
    lane = BatchLane(BatchOptions(detach=True), waiting, lambda event: None)
    model: Model = offline_model()
    model = type("Provider", (), {"system": "openai", "continuation_delay": lambda self, r: 0.0})()  # type: ignore[assignment]
    exchange = Exchange(messages=[ModelRequest(parts=[UserPromptPart("p")]), _ticket("b1", "in_progress")])
    lane.entered()
    parked = asyncio.ensure_future(lane.suspended("k", Stage.FEATURES, model, exchange, exchange.messages[-1]))
    await asyncio.sleep(0)
    assert lane.quiet()
    assert "k" in waiting.saved
    saved = ModelMessagesTypeAdapter.validate_json(waiting.saved["k"][0])
    assert len(saved) == 1  # not the first request: the resumed call rebuilds it
    resumed = lane.resumed("k", ModelRequest(parts=[UserPromptPart("p")]))
    assert resumed is not None
    assert len(resumed.messages) == 2
    assert lane.resumed("other", ModelRequest(parts=[])) is None
    parked.cancel()
    await asyncio.gather(parked, return_exceptions=True)
    lane.left()
    assert lane.parked == 0
    assert not lane.quiet()
    lane.collected("k")
    assert waiting.collected_keys == ["k"]


async def test_a_batch_already_ended_is_read_at_once_and_others_are_waited_for() -> None:
    lane = BatchLane(BatchOptions(poll_interval_s=0.01), None, lambda event: None)
    model: Any = type("Provider", (), {"system": "openai", "continuation_delay": lambda self, r: None})()
    await lane.suspended("k", Stage.FEATURES, model, Exchange(), _ticket("b", "ended"))
    await lane.suspended("k", Stage.FEATURES, model, Exchange(), _ticket("b", "in_progress"))  # waits poll_interval_s
    assert batch_id_of(_ticket("b", "in_progress")) == "b"
    assert batch_id_of(ModelResponse(parts=[])) is None


async def test_a_waiting_call_is_saved_once_per_submission_not_at_every_check() -> None:
    waiting = _Waiting()
    lane = BatchLane(BatchOptions(poll_interval_s=0.001), waiting, lambda event: None)
    model: Any = type("Provider", (), {"system": "openai", "continuation_delay": lambda self, r: 0.0})()
    exchange = Exchange(messages=[ModelRequest(parts=[UserPromptPart("p")])])
    for response in (_ticket("b1", "in_progress"), _ticket("b1", "in_progress"), _ticket("b2", "in_progress")):
        exchange.messages[1:] = [response]
        await lane.suspended("k", Stage.FEATURES, model, exchange, response)
    assert waiting.writes == 2  # b1 once (checked twice), then its resubmission in b2
    lane.collected("k")
    await lane.suspended("k", Stage.FEATURES, model, exchange, _ticket("b2", "in_progress"))
    assert waiting.writes == 3  # a new call under the same key is saved afresh
