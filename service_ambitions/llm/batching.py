"""Batch mode of the gateway: requests go through the provider's batch API, not live.

pydantic-ai does the batching (``BatchModelRequests``): requests made through one
instance share batches, a batch is submitted when full or when its oldest request has
waited ``max_wait_s``, expired and 429/5xx lines are resubmitted in new batches, and a
request first comes back as a *suspended* response naming its batch. This module holds
what the run adds around that:

- every suspended response is saved to the run's record (:class:`WaitingCalls`) before
  the call waits, so another process can collect it without submitting it again, and a
  saved one is where a resumed call starts (:meth:`BatchLane.resumed`);
- the waits between checks (pydantic-ai's growing poll interval), or, when the run
  detaches, parking the call until the run ends (:attr:`BatchLane.parked`);
- events for the panel, ``report`` and ``runs show``: each batch submitted, each change of
  its provider status, and how its requests fared once it ended (:class:`_WatchedBatches`,
  which sits between pydantic-ai's batching and the provider's model).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from pydantic_ai.capabilities import BatchModelRequests
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelRequest, ModelResponse
from pydantic_ai.models import Model
from pydantic_ai.models.batch import Batch, BatchResult, EncodedBatchRequest
from pydantic_ai.models.wrapper import WrapperModel

from service_ambitions.core.events import BatchSubmitted, BatchUpdated, EventSink
from service_ambitions.core.models import Stage
from service_ambitions.llm.structured import Exchange, Resumed

__all__ = ["BatchLane", "BatchOptions", "WaitingCall", "WaitingCalls", "batch_id_of"]


class WaitingCall(Protocol):
    """A call saved while it waits on a batch (see ``runs/suspended.py``)."""

    @property
    def messages(self) -> str | None:
        """The call's messages as pydantic-ai's JSON, ending in its suspended response."""

    @property
    def failures(self) -> int:
        """Answers of the call that failed validation before it was saved."""


class WaitingCalls(Protocol):
    """Where a run keeps the calls waiting on batches: the run journals implement it."""

    def waiting(self, key: str) -> WaitingCall | None:
        """The call of ``key``, if an earlier run left it waiting on a batch."""

    def wait(self, key: str, stage: Stage, batch_id: str | None, messages: bytes, failures: int) -> None:
        """Keep the waiting call, on disk before this returns."""

    def collected(self, key: str) -> None:
        """The call of ``key`` waits no more."""


@dataclass(frozen=True)
class BatchOptions:
    """Sizes and waits of batch mode (``BatchSettings`` less what the job decides), and whether the run detaches."""

    max_requests: int = 1000
    max_wait_s: float = 10.0
    poll_interval_s: float = 30.0
    max_poll_interval_s: float = 600.0
    max_resubmissions: int = 2
    detach: bool = False


def batch_id_of(response: ModelResponse) -> str | None:
    """The batch a suspended response, or an answer from a batch, came through."""
    ticket = (response.provider_details or {}).get("batch")
    if not isinstance(ticket, dict):
        return None
    batch = ticket.get("batch")
    found = batch.get("id") if isinstance(batch, dict) else ticket.get("id")
    return found if isinstance(found, str) else None


def _ended(response: ModelResponse) -> bool:
    """Whether a suspended response's batch had ended when it was last seen (an in-memory batch ends at once)."""
    ticket = (response.provider_details or {}).get("batch")
    batch = ticket.get("batch") if isinstance(ticket, dict) else None
    return isinstance(batch, dict) and batch.get("status") == "ended"


class BatchLane:
    """The gateway's way to a provider's batch API, shared by every call of a run.

    Create it inside the running event loop; :meth:`close` it when the run ends.
    """

    def __init__(self, options: BatchOptions, waiting: WaitingCalls | None, emit: EventSink) -> None:
        self.options = options
        self._waiting = waiting
        self._emit = emit
        self._batching = BatchModelRequests(
            max_requests=options.max_requests,
            max_wait=timedelta(seconds=options.max_wait_s),
            max_resubmissions=options.max_resubmissions,
            poll_interval=timedelta(seconds=options.poll_interval_s),
            max_poll_interval=timedelta(seconds=options.max_poll_interval_s),
        )
        self._statuses: dict[str, str] = {}
        self._saved: dict[str, str] = {}
        """Per waiting call, the submission (suspended response id) last saved."""
        self._parked = asyncio.Event()  # never set: a parked call waits until the run ends
        self.parked = 0
        """Calls parked until the run detaches (with ``detach``)."""
        self.waiting = 0
        """Calls whose request is in a submitted batch (waiting to check it, or parked)."""
        self.active = 0
        """Calls in the batch lane now, parked or not."""
        self.moves = 0
        """Grows whenever a call enters, leaves or parks: unchanged means nothing moved."""

    def wrap(self, model: Model, name: str) -> Model:
        """``model`` with its requests batched (and watched); ``jobs/setup.py`` checked it can be."""
        wrapped = self._batching.get_wrapper_model(_WatchedBatches(model, name, self))
        assert wrapped is not None  # nosec B101  # BatchModelRequests wraps every model it is given
        return wrapped

    def resumed(self, key: str, first: ModelRequest) -> Resumed | None:
        """Where a call an earlier run left waiting on a batch starts again; None for a new call.

        ``first`` is the call's first request, rebuilt from the prompt (the same, as the key is):
        only what followed it is saved.
        """
        saved = self._waiting.waiting(key) if self._waiting is not None else None
        if saved is None or saved.messages is None:
            return None
        messages = ModelMessagesTypeAdapter.validate_json(saved.messages)
        return Resumed([first, *messages], saved.failures)

    def entered(self) -> None:
        """A call entered the lane."""
        self.active += 1
        self.moves += 1

    def left(self) -> None:
        """A call left the lane, answered or not."""
        self.active -= 1
        self.moves += 1

    def collected(self, key: str) -> None:
        """The call of ``key`` ended (its answer is cached, or it failed): nothing waits for it any more."""
        self._saved.pop(key, None)
        if self._waiting is not None:
            self._waiting.collected(key)

    async def suspended(
        self, key: str, stage: Stage, model: Model, exchange: Exchange, response: ModelResponse
    ) -> None:
        """Save the waiting call, then wait until its batch is worth checking again (or park it)."""
        self.waiting += 1
        self.moves += 1
        try:
            await self._wait(key, stage, model, exchange, response)
        finally:
            self.waiting -= 1
            self.moves += 1

    async def _wait(self, key: str, stage: Stage, model: Model, exchange: Exchange, response: ModelResponse) -> None:
        submitted = response.provider_response_id
        saved = submitted is not None and self._saved.get(key) == submitted
        if self._waiting is not None and model.system != "function" and not saved:
            # Once per submission, not at every check of it: a check changes nothing a
            # resumed call needs. (The offline model's batches live in memory: nothing
            # could collect them later.) Not the first request: the prompt is the bulk of
            # it, and the resumed call has it.
            messages = ModelMessagesTypeAdapter.dump_json(exchange.messages[1:])
            self._waiting.wait(key, stage, batch_id_of(response), messages, exchange.failures)
            if submitted is not None:
                self._saved[key] = submitted
        if self.options.detach and self._waiting is not None:
            self.parked += 1
            self.moves += 1
            try:
                await self._parked.wait()
            finally:
                self.parked -= 1
        if _ended(response):
            return  # nothing to wait for: read its results now
        delay = model.continuation_delay(response)
        await asyncio.sleep(delay if delay is not None else self.options.poll_interval_s)

    def quiet(self) -> bool:
        """True when every call in the lane is parked: all that is left waits on the provider."""
        return self.parked > 0 and self.parked == self.active

    def queued(self) -> bool:
        """True when some call in the lane is not waiting on a batch: its request may sit in a queue."""
        return self.active > self.waiting

    async def flush(self) -> None:
        """Submit the requests queued so far now, rather than after ``max_wait_s``."""
        await self._batching.flush()

    async def close(self) -> None:
        """Stop pydantic-ai's submissions and checks still running on this loop."""
        async with self._batching:
            pass

    # Told by _WatchedBatches:

    def submitted(self, batch: Batch, name: str) -> None:
        """A batch went to the provider."""
        status = self._statuses[batch.id] = _provider_status(batch)
        self._emit(BatchSubmitted(batch_id=batch.id, model=name, requests=batch.request_count, status=status))

    def checked(self, batch: Batch) -> None:
        """A batch was checked: told when its provider status changed."""
        status = _provider_status(batch)
        if self._statuses.get(batch.id) != status and batch.status != "ended":
            self._statuses[batch.id] = status
            self._emit(BatchUpdated(batch_id=batch.id, status=status))

    def ended(self, batch: Batch, results: Sequence[BatchResult]) -> None:
        """A batch ended and its results were read."""
        counts = Counter(result.status for result in results)
        details = batch.provider_details or {}
        errors = details.get("errors")
        message = None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = str(errors[0].get("message") or errors[0].get("code") or "") or None
        self._statuses[batch.id] = status = _provider_status(batch)
        self._emit(
            BatchUpdated(
                batch_id=batch.id,
                status=status,
                ended=True,
                succeeded=counts["succeeded"],
                failed=counts["errored"],
                unrun=counts["expired"] + counts["canceled"],
                message=message,
            )
        )


def _provider_status(batch: Batch) -> str:
    """The provider's own word for the batch's state (OpenAI's), else pydantic-ai's."""
    status = (batch.provider_details or {}).get("status")
    return status if isinstance(status, str) else batch.status


class _WatchedBatches(WrapperModel):
    """The provider's model, telling the lane about every batch it creates and checks."""

    def __init__(self, wrapped: Model, name: str, lane: BatchLane) -> None:
        super().__init__(wrapped)
        self._name = name
        self._lane = lane

    async def batch_create(self, requests: Sequence[EncodedBatchRequest]) -> Batch:
        batch = await self.wrapped.batch_create(requests)
        self._lane.submitted(batch, self._name)
        return batch

    async def batch_status(self, batch: Batch) -> Batch:
        checked = await self.wrapped.batch_status(batch)
        self._lane.checked(checked)
        return checked

    async def batch_results(self, batch: Batch) -> list[BatchResult]:
        results = await self.wrapped.batch_results(batch)
        self._lane.ended(batch, results)
        return results
