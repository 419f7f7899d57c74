from __future__ import annotations

from pathlib import Path

import pytest

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.models import Service
from service_ambitions.reference.prompting import load_prompts, render_service


def test_packaged_prompts_load_and_hash_stably() -> None:
    first, second = load_prompts(), load_prompts()
    assert set(first.stages) == {"descriptions", "features", "mapping", "judge"}
    assert set(first.blocks) == {"context", "vision", "writing", "rubric", "feature_definition"}
    assert first.sha256 == second.sha256


def test_directory_overrides_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "context.md").write_text("You work for a city council.")
    prompts = load_prompts(tmp_path)
    assert prompts.instructions("descriptions", plateaus="").startswith("You work for a city council.")
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


def test_the_marker_splits_shared_instructions_from_the_request(tmp_path: Path) -> None:
    (tmp_path / "descriptions.md").write_text("$context\nPlateaus: $plateaus\n<!-- per call -->\nService: $service\n")
    prompts = load_prompts(tmp_path)
    instructions = prompts.instructions("descriptions", plateaus="P1, P2")
    assert instructions.endswith("Plateaus: P1, P2")
    assert "per call" not in instructions
    assert prompts.request("descriptions", service="Library", plateaus="P1") == "Service: Library"


def test_a_template_without_the_marker_is_all_request_with_the_context_as_instructions(tmp_path: Path) -> None:
    (tmp_path / "descriptions.md").write_text("Describe $service at $plateaus.")
    prompts = load_prompts(tmp_path)
    assert prompts.request("descriptions", service="Library", plateaus="P1") == "Describe Library at P1."
    assert prompts.instructions("descriptions", plateaus="P1") == prompts.blocks["context"]


def test_per_call_content_above_the_marker_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "features.md").write_text("$context\n$service\n<!-- per call -->\n$earlier_features\n")
    with pytest.raises(ConfigError, match=r"\$service changes with every call") as caught:
        load_prompts(tmp_path)
    assert "cached prefix" in (caught.value.hint or "")


def test_a_block_takes_no_placeholders(tmp_path: Path) -> None:
    (tmp_path / "vision.md").write_text("Heading for $service.")
    with pytest.raises(ConfigError, match=r"unknown placeholder \$service"):
        load_prompts(tmp_path)


def test_the_judge_template_does_not_change_a_runs_prompt_hash(tmp_path: Path) -> None:
    (tmp_path / "judge.md").write_text("$context\n<!-- per call -->\nScore $service: $roadmap\n")
    assert load_prompts(tmp_path).sha256 == load_prompts().sha256
    (tmp_path / "mapping.md").write_text("Map $features.")
    assert load_prompts(tmp_path).sha256 != load_prompts().sha256


def test_empty_blocks_leave_no_runs_of_blank_lines() -> None:
    prompts = load_prompts()
    text = prompts.instructions(
        "mapping", plateaus="P", catalogue_label="Data", catalogue_description="", catalogue_items="| a |", facets=""
    )
    assert "\n\n\n" not in text
    assert "## Catalogue: Data\n\n| a |" in text
