"""Where settings come from besides flags: the settings file found, its paths, and misspelt keys.

The settings file is read here once: its keys are checked against the settings (a typo is
an error, not a silently ignored line) and its paths made relative to the file itself.
``SA_*`` variables, in the environment or ``.env``, are checked the same way.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from service_ambitions.core.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_PATH", "check_variables", "dotenv", "find_config", "read_settings_file"]

DEFAULT_CONFIG_PATH = Path("config/app.yaml")
"""Read when present and no ``--config`` is given; relative to the working directory (see :func:`find_config`)."""

PREFIX = "SA_"

_PATHS = (("prompts_dir",), ("runs_dir",), ("cache_dir",), ("reference", "plateaus"), ("reference", "roles"))
"""Settings that hold one path; ``reference.catalogues`` holds a list of them."""


def find_config(*, environ: Mapping[str, str] | None = None) -> Path:
    """The settings file used without ``--config``: ``./config/app.yaml``, else the user's own.

    The user's file is ``$XDG_CONFIG_HOME/service-ambitions/config.yaml`` (the platform's
    user config directory), so an installed tool has settings wherever it runs. When
    neither exists, the first is returned (and, missing, is simply not read).
    """
    if DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    environ = os.environ if environ is None else environ
    if xdg := environ.get("XDG_CONFIG_HOME"):
        user = Path(xdg) / "service-ambitions" / "config.yaml"
    else:
        from platformdirs import user_config_dir

        user = Path(user_config_dir("service-ambitions", appauthor=False)) / "config.yaml"
    return user if user.is_file() else DEFAULT_CONFIG_PATH


def read_settings_file(path: Path, settings: type[BaseModel]) -> dict[str, Any]:
    """The settings the YAML file at ``path`` holds (none when it is missing), paths relative to it.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 or YAML, is not a mapping, or
            names a setting ``settings`` does not have.
    """
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    known = list(settings.model_fields)
    unknown = sorted(set(map(str, data)) - set(known))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {', '.join(unknown)}",
            hint=_did_you_mean(unknown[0], known) or f"known settings: {', '.join(known)}",
        )
    return _relative_to(data, path.parent)


def _relative_to(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``data`` with its relative paths made relative to ``folder``, the settings file's own."""

    def resolve(value: Any) -> Any:
        return str(folder / value) if isinstance(value, str) and not Path(value).is_absolute() else value

    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for keys in _PATHS:
        holder: Any = data
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and keys[-1] in holder:
            holder[keys[-1]] = resolve(holder[keys[-1]])
    reference = data.get("reference")
    if isinstance(reference, dict) and isinstance(reference.get("catalogues"), list):
        reference["catalogues"] = [resolve(path) for path in reference["catalogues"]]
    return data


def dotenv(path: Path) -> dict[str, str | None]:
    """The variables of a ``.env`` file (none when it is missing).

    Raises:
        ConfigError: the file is not UTF-8 text.
    """
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        return dict(dotenv_values(path, encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8") from exc


def check_variables(variables: Mapping[str, str | None], kind: str, settings: type[BaseModel]) -> None:
    """Refuse ``SA_*`` variables that misspell a setting: a typo must not silently leave the default.

    A variable that resembles no setting at all is another program's (``SA_PASSWORD`` of
    a database image, say) and is left alone.

    Raises:
        ConfigError: a variable names no setting but resembles one.
    """
    for name in variables:
        if not name.upper().startswith(PREFIX):
            continue
        path = name[len(PREFIX) :].lower().split("__")
        model = settings
        for depth, part in enumerate(path):
            fields = model.model_fields
            if part not in fields:
                suggestion = _did_you_mean(part, list(fields), prefix=name[: len(name) - len(part)].upper())
                if suggestion is None and depth == 0:
                    break  # nothing like ours: not our variable
                where = "a setting" if depth == 0 else f"a setting of {'.'.join(path[:depth])}"
                raise ConfigError(
                    f"{kind} {name} names no setting: {part!r} is not {where}",
                    hint=suggestion or f"known: {', '.join(fields)}",
                )
            annotation = fields[part].annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                break  # a plain value (lists and dicts given as JSON included)
            model = annotation


def _did_you_mean(name: str, known: list[str], *, prefix: str = "") -> str | None:
    close = difflib.get_close_matches(name.lower(), known, n=1)
    return f"did you mean {prefix}{close[0].upper() if prefix else close[0]}?" if close else None
