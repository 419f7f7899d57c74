"""check: every rule fires on a planted defect and stays quiet on a clean roadmap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import QualitySettings
from service_ambitions.core.models import ServiceEvolution
from service_ambitions.quality.report import check_evolutions
from service_ambitions.quality.rules import RULES

runner = CliRunner()


def _feature(n: int, plateau: int, role: str, level: int, **over: Any) -> dict[str, Any]:
    feature = {
        "feature_id": f"f{plateau}{role[0]}{n}",
        "name": "",
        "description": "",
        "score": {"level": level, "label": "x", "justification": f"Evidence {plateau}-{role}-{n}: owned and measured."},
        "customer_type": role,
        "mappings": {"applications": [{"item": "APP-CRM"}]},
    }
    return feature | over


def clean_record(**meta: Any) -> dict[str, Any]:
    plateaus = []
    levels = {1: [1, 2], 2: [2, 1], 3: [2, 4], 4: [3, 5], 5: [5, 4]}  # rising, never the plateau's number copied
    for plateau in range(1, 6):
        features = [
            _feature(i + plateau, plateau, role, levels[plateau][i])
            for role in ("learners", "partners")
            for i in range(2)
        ]
        plateaus.append(
            {
                "plateau": plateau,
                "plateau_id": f"p{plateau}",
                "plateau_name": f"Stage{plateau}",
                "service_description": (
                    "Applicants, schools and tutors share one record of each application, see its status without "
                    f"asking, and staff spend their time on judgement rather than re-keying, step {plateau}."
                ),
                "features": features,
            }
        )
    # Each feature's words are its own: give every one a distinct topic so none repeats another.
    for i, (_result, feature) in enumerate((p, f) for p in plateaus for f in p["features"]):
        feature["name"] = f"Capability {i} " + ["alpha", "beta", "gamma", "delta", "epsilon"][i % 5]
        feature["description"] = f"Unique outcome number {i} for customers " + " ".join(f"w{i}x{k}" for k in range(8))
    return {
        "meta": {
            "run_id": "r",
            "created": "2026-12-06T00:00:00Z",
            "generator": "test",
            "models": {"descriptions": "m", "features": "m", "mapping": "m"},
            "seed": 0,
            "synthetic": False,
            "reference": None,
        }
        | meta,
        "service": {"service_id": "svc-a", "name": "Admissions", "description": "Handles applications."},
        "plateaus": plateaus,
    }


def findings(record: dict[str, Any], **settings: Any) -> list[str]:
    evolution = ServiceEvolution.model_validate(record)
    report = check_evolutions([evolution], QualitySettings(vendors=["Salesforce"], **settings))
    return [finding.rule for finding in report.services[0].findings]


def test_a_clean_roadmap_has_no_finding_and_scores_100() -> None:
    evolution = ServiceEvolution.model_validate(clean_record())
    report = check_evolutions([evolution], QualitySettings(vendors=["Salesforce"]))
    assert report.services[0].findings == []
    assert report.services[0].score == 100
    assert report.clean == 1


def _every_feature(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [feature for plateau in record["plateaus"] for feature in plateau["features"]]


def plant(rule: str) -> dict[str, Any]:  # noqa: C901 (one branch a rule)
    record = clean_record()
    features = _every_feature(record)
    plateaus = record["plateaus"]
    if rule == "maturity-not-rising":
        for feature in plateaus[4]["features"]:
            feature["score"]["level"] = 1
    elif rule == "level-copies-plateau":
        for plateau in plateaus:
            for feature in plateau["features"]:
                feature["score"]["level"] = plateau["plateau"]
    elif rule == "repeated-feature":
        plateaus[3]["features"][0]["name"] = features[0]["name"]
        plateaus[3]["features"][0]["description"] = features[0]["description"]
    elif rule == "role-without-features":
        plateaus[2]["features"] = [f for f in plateaus[2]["features"] if f["customer_type"] != "partners"]
    elif rule == "feature-relies-on-nothing":
        features[3]["mappings"] = {"applications": []}
    elif rule == "catalogue-unused":
        for feature in features:
            feature["mappings"]["data"] = []
    elif rule == "invented-ids":
        record["meta"]["dropped_items"] = 9
    elif rule == "repeated-justification":
        features[5]["score"]["justification"] = features[1]["score"]["justification"]
    elif rule == "vendor-name":
        features[2]["description"] += " Runs on Salesforce."
    elif rule == "acronym-unexplained":
        features[4]["description"] += " Uses the new CRM."
    elif rule == "plateau-description":
        plateaus[1]["service_description"] = "At the Stage2 plateau the service is better."
    return record


@pytest.mark.parametrize("rule", [rule.id for rule in RULES])
def test_each_rule_finds_its_planted_defect_and_only_it(rule: str) -> None:
    found = findings(plant(rule))
    assert rule in found
    assert set(found) == {rule}, found
    assert rule not in findings(plant(rule), skip=[rule])  # and can be turned off


def test_a_spelled_out_acronym_is_not_a_finding() -> None:
    record = plant("acronym-unexplained")
    _every_feature(record)[0]["description"] += " A customer relationship management (CRM) record."
    assert findings(record) == []


def test_check_command_exit_codes_and_json(tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_text(ServiceEvolution.model_validate(clean_record()).model_dump_json() + "\n")
    result = runner.invoke(app, ["check", str(clean)], env={"SA_QUALITY__VENDORS": '["Salesforce"]'})
    assert result.exit_code == 0, result.output
    assert "1 of 1 services clean" in result.stdout
    bad = tmp_path / "bad.jsonl"
    record = plant("vendor-name")
    _every_feature(record)[0]["name"] = "[red]Salesforce[/red] portal"  # data, shown as text
    bad.write_text(ServiceEvolution.model_validate(record).model_dump_json() + "\nnot json\n")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "[red]Salesforce[/red] portal" in result.stdout
    assert "vendor-name" in result.stdout
    assert "1 lines were not readable" in result.stdout
    document = runner.invoke(app, ["check", str(bad), "--json"])
    assert document.exit_code == 1
    parsed = json.loads(document.stdout)
    assert parsed["skipped_lines"] == 1
    assert {f["rule"] for f in parsed["services"][0]["findings"]} >= {"vendor-name"}


def test_a_file_with_no_readable_record_is_an_input_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not json\n")
    result = runner.invoke(app, ["check", str(empty)])
    assert result.exit_code == 3
    assert "no readable evolution record" in result.stderr


def test_a_role_left_out_everywhere_is_found_when_the_record_was_made_with_those_roles() -> None:
    from service_ambitions.quality.rules import KnownRoles

    record = clean_record(reference={"plateaus": "p", "roles": "sha-r", "catalogues": {}, "prompts": "x"})
    evolution = ServiceEvolution.model_validate(record)
    roles = KnownRoles("sha-r", ("learners", "partners", "academics"))
    report = check_evolutions([evolution], QualitySettings(vendors=[]), roles)
    found = [(f.rule, f.role, f.plateau) for f in report.services[0].findings]
    assert found == [("role-without-features", "academics", plateau) for plateau in range(1, 6)]
    other = check_evolutions([evolution], QualitySettings(vendors=[]), KnownRoles("another-file", ("academics",)))
    assert other.services[0].findings == []  # made with other roles: theirs are not expected


@pytest.mark.parametrize(
    ("extra", "repeats"),
    [
        ("", 1),  # every word shared
        (" " + " ".join(f"pad{k}" for k in range(40)), 0),  # grown far past the original: too few shared
    ],
)
def test_repeated_features_are_found_by_the_words_they_share(extra: str, repeats: int) -> None:
    record = plant("repeated-feature")
    copy = record["plateaus"][3]["features"][0]
    copy["name"] = "A renamed capability"  # the names differ: only the words can tell
    copy["description"] += extra
    assert findings(record).count("repeated-feature") == repeats
