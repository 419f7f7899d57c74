"""The runtime API: JSON over HTTP for the pages, dashboards and scripts (documented at ``/api/docs``).

Each endpoint is a thin adapter over a ``jobs``/``runs``/``views`` call the CLI makes too;
blocking work runs in a thread so a long report never stalls a live stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from service_ambitions.core.errors import ConfigError, InputError
from service_ambitions.web import reads
from service_ambitions.web.state import WebState, for_run, not_found, web_state

if TYPE_CHECKING:
    from service_ambitions.jobs.launch import JobForm, JobLauncher

__all__ = ["routes"]

_SCHEMAS = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "service-ambitions runtime API", "version": "1"}})

_Form = TypeVar("_Form", bound=BaseModel)


def _json(document: str, status_code: int = 200) -> Response:
    return Response(document, status_code=status_code, media_type="application/json")


def _model(value: BaseModel, status_code: int = 200) -> Response:
    return _json(value.model_dump_json(exclude_none=True), status_code)


async def _body(request: Request, kind: type[_Form]) -> _Form:
    """The request's JSON body as ``kind``; a malformed one is a user's error (422)."""
    try:
        return kind.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InputError(f"{where}: {first['msg']}", hint="see /api/docs for the fields") from None


async def list_runs(request: Request) -> Response:
    """Every run journaled in the workspace's runs directory, newest first (their manifests).

    ---
    summary: Every run of the runs directory, newest first (their manifests).
    """
    from service_ambitions.runs.journal import Manifest
    from service_ambitions.runs.usage import list_runs as manifests

    state = web_state(request)
    found = await asyncio.to_thread(manifests, state.settings.runs_directory())
    return _json(TypeAdapter(list[Manifest]).dump_json(found).decode())


@for_run()
async def run_detail(request: Request, state: WebState, directory: Path) -> Response:
    """One run's manifest with each service's state, the files it wrote and its provider batches.

    ---
    summary: One run's manifest with each service's state, the files it wrote and its provider batches.
    """
    return _model(await reads.details(state, directory))


@for_run()
async def run_report(request: Request, state: WebState, directory: Path) -> Response:
    """What the run used and cost, in total and by stage, model and service (report --json).

    ---
    summary: What the run used and cost, in total and by stage, model and service (report --json --by-service).
    """
    return _json((await reads.report(state, directory)).model_dump_json())


@for_run()
async def run_live(request: Request, state: WebState, directory: Path) -> Response:
    """The run's live figures now: what the CLI's panel shows (services, ETA, rates, spend, health, stages).

    ---
    summary: The run's live figures now (the panel's), as the AG-UI stream's state carries them.
    """
    return _model(await reads.figures(state, directory))


@for_run()
async def run_events(request: Request, state: WebState, directory: Path) -> Response:
    """The run's events as server-sent events, followed while the run runs.

    ---
    summary: The run's events as server-sent events (one envelope each, id = its line), followed while it runs.
    description: Resumable with Last-Event-ID; ?follow=false stops at the end of what is written.
    """
    run_id = directory.name
    after = request.headers.get("last-event-id", "0")
    start = int(after) if after.isdigit() else 0
    follow = request.query_params.get("follow", "true") != "false"
    stream = _event_stream(directory, run_id, start, follow=follow, state=state)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def _event_stream(
    directory: Path, run_id: str, start: int, *, follow: bool, state: WebState
) -> AsyncIterator[str]:
    """Each event line after ``start`` as an SSE message; following, until the run ends (or the server stops)."""
    from service_ambitions.core.events import as_envelope
    from service_ambitions.runs.journal import EventTail

    seen = 0
    with EventTail(directory) as tail:
        while True:
            ended = follow and await asyncio.to_thread(tail.ended)
            for line in tail.new_lines():  # after `ended`: what was written before the status changed too
                seen += 1
                if seen > start:
                    envelope = as_envelope(json.loads(line), run_id)
                    yield f"id: {seen}\nevent: {envelope['type']}\ndata: {json.dumps(envelope)}\n\n"
            if not follow or ended or state.stopping.is_set():
                return
            await asyncio.sleep(state.poll_s)


async def start_run(request: Request) -> Response:
    """Start a run or a map as the CLI would (its own process; the same lock, journal and budget).

    ---
    summary: Start a run or a map (the body is a JobForm); answers its run_id once it is journaled.
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: "#/components/schemas/JobForm"
    """
    from service_ambitions.jobs.launch import JobForm

    state = web_state(request)
    form = await _body(request, JobForm)
    launcher = _need_launcher(state)
    launched = await asyncio.to_thread(launcher.start, form)
    return _model(launched, 201)


@for_run()
async def cancel_run(request: Request, state: WebState, directory: Path) -> Response:
    """Stop a running run as Ctrl-C stops the CLI (its journal says so; resume continues it).

    ---
    summary: Stop a run running on this machine, from here or the CLI (journaled as terminated; resume continues it).
    """
    from service_ambitions.jobs.launch import stop_run
    from service_ambitions.runs.journal import read_manifest

    run_id = directory.name
    launcher = _need_launcher(state)
    manifest = read_manifest(directory)
    stopped = launcher.cancel(run_id) or (
        manifest is not None and await asyncio.to_thread(stop_run, manifest, state.settings.runs_directory())
    )
    if not stopped:
        return JSONResponse(
            {
                "error": f"run {run_id} is not running on this machine",
                "hint": "a run on another machine is stopped where it runs (Ctrl-C)",
            },
            status_code=409,
        )
    return JSONResponse({"run_id": run_id, "stopping": True}, status_code=202)


@for_run()
async def resume_run(request: Request, state: WebState, directory: Path) -> Response:
    """Continue a stopped run with the settings that started it (run --resume).

    ---
    summary: Continue a stopped run with the words that started it and --resume; answers the run_id.
    """
    from service_ambitions.runs.journal import RunStatus, read_manifest

    run_id = directory.name
    manifest = read_manifest(directory)
    if manifest is None:
        return not_found(request, run_id)
    if manifest.status is RunStatus.RUNNING:
        return JSONResponse({"error": f"run {run_id} is running"}, status_code=409)
    if not manifest.command_line:
        raise ConfigError(f"run {run_id} does not say how it was started", hint="continue it with the CLI")
    launched = await asyncio.to_thread(_need_launcher(state).resume, manifest.command_line, run_id)
    return _model(launched, 201)


def _need_launcher(state: WebState) -> JobLauncher:
    if state.launcher is None:
        raise ConfigError("this server only reads (--read-only)", hint="start serve without --read-only to start runs")
    return state.launcher


class ValidateForm(BaseModel):
    """What ``validate`` is given: a services file of the workspace, and the model to check for."""

    model_config = ConfigDict(extra="forbid")

    input: str
    model: str | None = None


async def validate(request: Request) -> Response:
    """Check a services file, the reference data, the prompts, the models and their keys (validate --json).

    ---
    summary: Check a services file, reference data, prompts, models and keys, each on its own (validate --json).
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: "#/components/schemas/ValidateForm"
    """
    from service_ambitions.config.settings import Overrides, load_settings
    from service_ambitions.jobs.checks import run_checks
    from service_ambitions.jobs.launch import workspace_file
    from service_ambitions.jobs.reports import CheckRow

    state = web_state(request)
    form = await _body(request, ValidateForm)
    source = workspace_file(state.workspace, form.input)
    settings = load_settings(state.config, Overrides(model=form.model)) if form.model else state.settings
    checks = await asyncio.to_thread(run_checks, settings, source)
    rows = [CheckRow.of(check) for check in checks]
    return _json(TypeAdapter(list[CheckRow]).dump_json(rows).decode())


async def plan(request: Request) -> Response:
    """What a run or map would do and cost, calling no model (run --dry-run --json).

    ---
    summary: What a run or map (body a JobForm) would do and cost, calling no model (--dry-run --json).
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: "#/components/schemas/JobForm"
    """
    from service_ambitions.jobs.launch import JobForm

    state = web_state(request)
    form = await _body(request, JobForm)
    report = await asyncio.to_thread(_plan_of, state, form)
    return _model(report)


def _plan_of(state: WebState, form: JobForm) -> BaseModel:
    from service_ambitions.config.settings import load_settings
    from service_ambitions.jobs.launch import workspace_file
    from service_ambitions.jobs.plan import estimate, estimate_remap
    from service_ambitions.jobs.reports import PlanReport
    from service_ambitions.jobs.setup import prepare

    settings = load_settings(state.config, form.overrides())
    source = workspace_file(state.workspace, form.input)
    if form.command == "map":
        prepared = prepare(settings, stages=("mapping",))
        return PlanReport.of(estimate_remap(prepared, source, catalogues=form.catalogues))
    prepared = prepare(settings, resolve_models=True)
    return PlanReport.of(estimate(prepared, source, max_services=form.max_services))


async def workspace(request: Request) -> Response:
    """The workspace's JSONL files (services, outputs), catalogues and the settings runs start from.

    ---
    summary: The workspace's JSONL files (services, outputs, quarantines), catalogues and run settings.
    """
    from service_ambitions.jobs.workspace import list_workspace

    state = web_state(request)
    return _model(await asyncio.to_thread(list_workspace, state.workspace, state.settings))


async def upload(request: Request) -> Response:
    """Store a services JSONL in the workspace (the body is the file), once it reads as the CLI reads input.

    ---
    summary: Upload a services JSONL (the body) as NAME; size-limited, read as run reads input; ?replace=true.
    """
    from service_ambitions.jobs.workspace import store_upload

    state = web_state(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > state.max_upload_bytes:
        return _too_large(state)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > state.max_upload_bytes:
            return _too_large(state)
    replace = request.query_params.get("replace") == "true"
    stored = await asyncio.to_thread(
        store_upload,
        state.workspace,
        request.path_params["name"],
        bytes(data),
        max_line_bytes=state.settings.max_line_bytes,
        replace=replace,
    )
    return _model(stored, 201)


def _too_large(state: WebState) -> Response:
    limit = state.max_upload_bytes / 2**20
    return JSONResponse(
        {"error": f"the file is larger than {limit:g} MiB", "hint": "split it, or start serve with --max-upload-mb"},
        status_code=413,
    )


def _output_file(state: WebState, request: Request, key: str = "file") -> Path:
    from service_ambitions.jobs.launch import workspace_file

    name = request.query_params.get(key)
    if not name:
        raise InputError(f"which file? give ?{key}=NAME", hint="GET /api/workspace lists them")
    path = workspace_file(state.workspace, name)
    if not path.is_file():
        raise InputError(f"{name} is not a file in the workspace", hint="GET /api/workspace lists them")
    return path


async def findings(request: Request) -> Response:
    """Quality findings of an output file of the workspace (check --json).

    ---
    summary: Quality findings of an output file (?file=NAME), as check --json.
    """
    state = web_state(request)
    path = _output_file(state, request)
    report = await reads.findings(state, path)
    return _model(report.model_copy(update={"path": request.query_params["file"]}))


async def roadmap(request: Request) -> Response:
    """An output file's roadmap page (view), optionally with what changed since another (?compare=NAME).

    ---
    summary: An output's roadmap page as view writes it (?file=NAME, optional &compare=NAME), HTML.
    """
    state = web_state(request)
    path = _output_file(state, request)
    compare = _output_file(state, request, "compare") if request.query_params.get("compare") else None
    page = await reads.roadmap(state, path, compare)
    # The page is self-contained: its own inline script and styles, and nothing it may fetch.
    policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
    return Response(page.html, media_type="text/html", headers={"Content-Security-Policy": policy})


async def diff(request: Request) -> Response:
    """What changed between two output files of the workspace (diff --json).

    ---
    summary: What changed between two outputs (?old=NAME&new=NAME), as diff --json.
    """
    from service_ambitions.inputs.records import read_records
    from service_ambitions.views.diff import diff_runs

    state = web_state(request)
    old, new = _output_file(state, request, "old"), _output_file(state, request, "new")
    changes = await asyncio.to_thread(lambda: diff_runs(read_records(old), read_records(new)))
    return _model(changes)


async def cache_stats(request: Request) -> Response:
    """What the cache holds (cache stats --json), with the ages its cache_ttl setting gives.

    ---
    summary: What the cache holds (cache stats --json), with the ages its cache_ttl setting gives.
    """
    from service_ambitions.jobs.cache import cache_stats as stats
    from service_ambitions.jobs.reports import CacheStatsReport

    state = web_state(request)
    found = await asyncio.to_thread(stats, state.settings)
    return _json(CacheStatsReport.of(found).model_dump_json())


def _described(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document: each endpoint's summary, and the forms the changing ones take."""
    from pydantic.json_schema import models_json_schema

    from service_ambitions.jobs.launch import JobForm

    document = _SCHEMAS.get_schema(routes=routes)
    _, forms = models_json_schema(
        [(JobForm, "validation"), (ValidateForm, "validation")], ref_template="#/components/schemas/{model}"
    )
    document["components"] = {"schemas": forms["$defs"]}
    return document


async def openapi(request: Request) -> Response:
    """This API's OpenAPI description."""
    return JSONResponse(_described(request.app.routes))


async def docs(request: Request) -> Response:
    """The API's endpoints, in words."""
    from html import escape

    schema = _described(request.app.routes)
    rows = "".join(
        f"<li><code>{method.upper()} {escape(path)}</code>: {escape(str(operation.get('summary', '')))}</li>"
        for path, operations in schema.get("paths", {}).items()
        for method, operation in operations.items()
    )
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    forms = "".join(
        f"<h2>{escape(name)}</h2><ul>"
        + "".join(
            f"<li><code>{escape(field)}</code>: {escape(_kind(spec))}</li>"
            for field, spec in form.get("properties", {}).items()
        )
        + "</ul>"
        for name, form in components.items()
        if "properties" in form
    )
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>service-ambitions API</title>"
        f"<h1>service-ambitions runtime API</h1><p><a href=/>Workspace</a> · <a href=/api/openapi.json>OpenAPI</a></p>"
        f"<ul>{rows}</ul>{forms}</html>"
    )
    return Response(page, media_type="text/html")


def _kind(spec: dict[str, Any]) -> str:
    """A form field's JSON type in a few words (``string or null``, ``one of read, refresh…``)."""
    options = spec.get("anyOf", [spec])
    words = []
    for option in options:
        if "enum" in option:
            words.append("one of " + ", ".join(map(str, option["enum"])))
        elif "$ref" in option:
            words.append(option["$ref"].rsplit("/", 1)[-1])
        else:
            words.append(str(option.get("type", "any")))
    return " or ".join(words)


def routes() -> list[BaseRoute]:
    """The API's routes."""
    return [
        Route("/api/workspace", workspace, methods=["GET"]),
        Route("/api/files/{name:path}", upload, methods=["PUT"]),
        Route("/api/validate", validate, methods=["POST"]),
        Route("/api/plan", plan, methods=["POST"]),
        Route("/api/runs", list_runs, methods=["GET"]),
        Route("/api/runs", start_run, methods=["POST"]),
        Route("/api/runs/{run_id}", run_detail, methods=["GET"]),
        Route("/api/runs/{run_id}/report", run_report, methods=["GET"]),
        Route("/api/runs/{run_id}/live", run_live, methods=["GET"]),
        Route("/api/runs/{run_id}/events", run_events, methods=["GET"]),
        Route("/api/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
        Route("/api/runs/{run_id}/resume", resume_run, methods=["POST"]),
        Route("/api/outputs/findings", findings, methods=["GET"]),
        Route("/api/outputs/roadmap", roadmap, methods=["GET"]),
        Route("/api/outputs/diff", diff, methods=["GET"]),
        Route("/api/cache", cache_stats, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/api/docs", docs, methods=["GET"], include_in_schema=False),
    ]
