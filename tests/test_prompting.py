from __future__ import annotations

from pathlib import Path

import pytest

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.models import Service
from service_ambitions.reference.prompting import load_prompts, render_service


def test_packaged_prompts_load_and_hash_stably() -> None:
    first, second = load_prompts(), load_prompts()
    assert set(first.templates) == {"context", "descriptions", "features", "mapping"}
    assert first.sha256 == second.sha256


def test_directory_overrides_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "context.md").write_text("You work for a city council.")
    prompts = load_prompts(tmp_path)
    assert prompts.render("context") == "You work for a city council."
    assert prompts.sources["context"] == tmp_path / "context.md"
    assert prompts.sources["mapping"].name == "mapping.md"
    assert prompts.sha256 != load_prompts().sha256


def test_unknown_placeholder_is_reported_with_the_available_ones(tmp_path: Path) -> None:
    (tmp_path / "features.md").write_text("Plateau $plateau_nmae")
    with pytest.raises(ConfigError, match=r"unknown placeholder \$plateau_nmae") as caught:
        load_prompts(tmp_path)
    assert "$plateau_name" in caught.value.user_message


def test_stray_dollar_is_reported(tmp_path: Path) -> None:
    (tmp_path / "mapping.md").write_text("Costs $5")
    with pytest.raises(ConfigError, match=r"write '\$\$'"):
        load_prompts(tmp_path)


def test_missing_directory() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompts(Path("no-such-dir"))


def test_service_rendering_includes_jobs_and_existing_features() -> None:
    service = Service.model_validate(
        {
            "service_id": "s1",
            "name": "Library",
            "description": "Books.",
            "customer_type": "learners",
            "jobs_to_be_done": ["Borrow a book", {"name": "Find a seat", "role": "learners", "explanation": "Busy."}],
            "features": [{"name": "Catalogue search", "description": "Find items."}, {"name": "Loans"}],
        }
    )
    text = render_service(service)
    assert "Service: Library (s1)" in text
    assert "- Borrow a book" in text
    assert "- Find a seat (for learners): Busy." in text
    assert "- Catalogue search: Find items." in text
    assert "- Loans" in text
