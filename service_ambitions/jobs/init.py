"""``init``: a folder to start from, with a commented config, example services and editable reference data.

An installed tool (``uv tool install``, ``pipx``) has no repository around it: ``init``
writes what the help's examples use, from the package's own data, so they work as shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from service_ambitions.core.errors import OutputError

__all__ = ["InitResult", "init_project"]

_DATA = resources.files("service_ambitions.reference") / "defaults"
_PROMPTS = resources.files("service_ambitions.reference") / "prompts"

_COPY_NOTE = """# service-ambitions settings. Copy to config/app.yaml (read automatically from the
# working directory), to ~/.config/service-ambitions/config.yaml (read wherever the
# tool runs), or pass with --config FILE. `service-ambitions init` writes one."""
_INIT_NOTE = """# service-ambitions settings, written by `service-ambitions init`. Read automatically
# when the tool runs in the folder above this one; elsewhere pass --config FILE (or copy
# it to ~/.config/service-ambitions/config.yaml to use it wherever the tool runs)."""

_REFERENCE = """reference:
  plateaus: ../reference/plateaus.json
  roles: ../reference/roles.json
  catalogues:
{catalogues}"""


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    directory: Path
    written: list[Path]


def init_project(directory: Path, *, force: bool = False) -> InitResult:
    """Write ``config/app.yaml``, ``examples/services.jsonl``, ``reference/`` and ``prompts/`` under ``directory``.

    The config points at the copied reference files and prompts (relative to itself), so
    editing a catalogue, the vision or the rubric there changes what runs use.

    Raises:
        OutputError: a file would be overwritten (without ``force``), or cannot be written.
    """
    catalogues = sorted(entry.name for entry in (_DATA / "catalogues").iterdir() if entry.name.endswith(".json"))
    files: dict[Path, bytes] = {
        Path("examples/services.jsonl"): (_DATA / "examples" / "services.jsonl").read_bytes(),
        Path("reference/plateaus.json"): (_DATA / "plateaus.json").read_bytes(),
        Path("reference/roles.json"): (_DATA / "roles.json").read_bytes(),
        **{Path("reference/catalogues") / name: (_DATA / "catalogues" / name).read_bytes() for name in catalogues},
        **{
            Path("prompts") / entry.name: entry.read_bytes()
            for entry in sorted(_PROMPTS.iterdir(), key=lambda entry: entry.name)
            if entry.name.endswith(".md")
        },
    }
    template = (_DATA / "config.example.yaml").read_text(encoding="utf-8")
    start = template.index("reference:\n")
    end = template.index("\n\n", start)
    listed = "\n".join(f"    - ../reference/catalogues/{name}" for name in catalogues)
    config = template[:start] + _REFERENCE.format(catalogues=listed) + template[end:]
    config = config.replace(_COPY_NOTE, _INIT_NOTE, 1)
    config = config.replace("\nprompts_dir: null", "\nprompts_dir: ../prompts", 1)
    files[Path("config/app.yaml")] = config.encode()
    existing = [relative for relative in files if (directory / relative).exists()]
    if existing and not force:
        raise OutputError(
            f"{directory / existing[0]} exists already", hint="choose another directory, or add --force to overwrite"
        )
    written = []
    try:
        for relative, content in files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            written.append(target)
    except OSError as exc:
        raise OutputError(f"cannot write {directory}: {exc.strerror or exc}") from exc
    return InitResult(directory, written)
