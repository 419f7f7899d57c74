"""A workspace as the web face sees it: its files, its reference data, its settings, and uploads into it.

A workspace is a folder (``serve``'s argument): services files, outputs, and optionally a
``config/app.yaml``. Every name a request gives is resolved with :func:`workspace_file`,
so nothing outside the folder is read or written.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from service_ambitions.config.settings import Settings
from service_ambitions.core.errors import ConfigError, InputError
from service_ambitions.jobs.checks import scan_input
from service_ambitions.jobs.launch import workspace_file
from service_ambitions.reference.data import load_reference

__all__ = ["CatalogueRow", "FileRow", "Upload", "WorkspaceView", "list_workspace", "store_upload"]

FileKind = Literal["services", "evolutions", "quarantine", "other"]
_MAX_FILES = 500
_MAX_DEPTH = 3


class FileRow(BaseModel):
    """One JSONL file of the workspace."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Relative to the workspace, with ``/``."""
    kind: FileKind
    bytes: int
    modified: datetime


class CatalogueRow(BaseModel):
    """One catalogue of the workspace's reference data."""

    field: str
    items: int


class WorkspaceView(BaseModel):
    """What a workspace holds, for the workspace page."""

    root: str
    files: list[FileRow]
    more_files: bool
    """More JSONL files than are listed (the first 500 by name are)."""
    catalogues: list[CatalogueRow]
    reference_problem: str | None
    settings: dict[str, str | int | float | bool | None]
    """The settings a run starts from (the page's defaults)."""


class Upload(BaseModel):
    """A services file stored in the workspace."""

    name: str
    services: int
    rejected: list[str]
    """Lines the tool will not read: ``line N: why`` (the first 20)."""


def _kind(path: Path) -> FileKind:
    """What a JSONL file holds, from its first line."""
    if path.name.endswith(".quarantine.jsonl"):
        return "quarantine"
    try:
        with path.open("rb") as handle:
            first = handle.readline(1 << 20)
        record = json.loads(first)
    except (OSError, ValueError):
        return "other"
    if isinstance(record, dict) and "meta" in record and "plateaus" in record:
        return "evolutions"
    return "services" if isinstance(record, dict) and "service_id" in record else "other"


def _jsonl_files(root: Path) -> list[Path]:
    """JSONL files under ``root``, hidden folders left out, a few levels deep, by name."""
    found: list[Path] = []
    for folder, folders, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        folders[:] = sorted(name for name in folders if not name.startswith(".") and depth < _MAX_DEPTH)
        found += [Path(folder) / name for name in files if name.endswith((".jsonl", ".jsonl.prev"))]
    return sorted(found)


def list_workspace(root: Path, settings: Settings) -> WorkspaceView:
    """The workspace's JSONL files (services, outputs), its catalogues and its run settings."""
    root = root.resolve()
    paths = [path for path in _jsonl_files(root) if not path.is_symlink()]
    rows = []
    for path in paths[:_MAX_FILES]:
        stat = path.stat()
        rows.append(
            FileRow(
                name=path.relative_to(root).as_posix(),
                kind=_kind(path),
                bytes=stat.st_size,
                modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            )
        )
    catalogues: list[CatalogueRow] = []
    problem = None
    try:
        files = settings.reference
        reference = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
        catalogues = [CatalogueRow(field=c.field, items=len(c.items)) for c in reference.catalogues]
    except ConfigError as exc:
        problem = exc.message
    shown = {
        "model": settings.model,
        "concurrency": settings.concurrency,
        "max_in_flight": settings.max_in_flight,
        "max_cost": None if settings.max_cost is None else str(settings.max_cost),
        "warn_cost": settings.warn_cost,
        "seed": settings.seed,
        "cache_mode": str(settings.cache_mode),
        "runs_dir": str(settings.runs_directory()),
        "cache_dir": str(settings.cache_directory()),
    }
    return WorkspaceView(
        root=str(root),
        files=rows,
        more_files=len(paths) > _MAX_FILES,
        catalogues=catalogues,
        reference_problem=problem,
        settings=shown,
    )


def store_upload(root: Path, name: str, data: bytes, *, max_line_bytes: int, replace: bool = False) -> Upload:
    """Keep ``data`` as the services file ``name`` in the workspace, once it reads as the CLI reads input.

    The file is written whole or not at all (a temporary file renamed into place).

    Raises:
        InputError: the name is not a ``.jsonl`` file in the workspace, one is there already
            (without ``replace``), or the data holds no service the tool can read.
    """
    target = workspace_file(root, name)
    if not target.name.endswith(".jsonl") or target.name.startswith("."):
        raise InputError(f"{name!r} is not a JSONL file name", hint="name it like services.jsonl")
    if target.exists() and not replace:
        raise InputError(f"{name} is in the workspace already", hint="choose another name, or replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".jsonl")
    kept = Path(temporary)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        scan = scan_input(kept, max_line_bytes=max_line_bytes)
        if not scan.services:
            first = f": line {scan.rejected[0].line}: {scan.rejected[0].reason}" if scan.rejected else ""
            raise InputError(f"{name} holds no service the tool can read{first}", hint="one JSON object per line")
        kept.replace(target)
    finally:
        kept.unlink(missing_ok=True)
    rejected = [f"line {entry.line}: {entry.reason}" for entry in scan.rejected[:20]]
    return Upload(name=target.relative_to(root.resolve()).as_posix(), services=scan.services, rejected=rejected)
