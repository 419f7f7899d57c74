"""LLM access: model resolution, the offline model and the gateway every call goes through.

- :mod:`.gateway`: :func:`~.gateway.compose_gateway` builds the layers once; the gateway asks them;
- :mod:`.answers`: the cache layer (answers already known; an answer source behind it);
- :mod:`.imported`: the older tool's imported answers, as such a source (``--reuse-imported``);
- :mod:`.lanes`: the live and batch lanes, and the guard that stops sending once refused;
- :mod:`.layers`: breaker, rate, cap and budget around each live request (``WrapperModel``);
- :mod:`.structured`, :mod:`.keys`, :mod:`.requests`: one call's request, answer, key and output tool;
- :mod:`.budget`, :mod:`.limits`, :mod:`.pacing`, :mod:`.transport`, :mod:`.failures`: money,
  limits, announced rates, HTTP retries, and pydantic-ai's errors as ours;
- :mod:`.batching`: pydantic-ai's batching with what a run adds (saving, resuming, events);
- :mod:`.resolve`, :mod:`.names`, :mod:`.chains`, :mod:`.offline`: models by name, fallback
  chains, and the offline model.

May import: ``cache`` and the foundations; never ``pipeline``, ``runs`` or above. It knows
what a call is about (a :class:`~.requests.Subject`), never what a service is.
"""

__all__: list[str] = []
