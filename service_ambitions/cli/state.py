"""What every command gets from the application callback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from service_ambitions.config.settings import Overrides, Settings

__all__ = ["AppState"]


@dataclass(frozen=True)
class AppState:
    """The ``--config`` file and the two consoles: results on ``out``, everything else on ``err``."""

    config: Path | None
    out: Console
    err: Console
    quiet: bool = False
    """``-q`` given before the command (or moved there from after it)."""

    def settings(self, flags: Overrides | None = None) -> Settings:
        """Settings from every source, with the flags the user gave on top."""
        from service_ambitions.config.settings import load_settings

        return load_settings(self.config, flags)
