from __future__ import annotations

import re

from pydantic_ai import Agent

from service_ambitions.config.settings import FeatureCount
from service_ambitions.core.models import Feature, FeatureScore, Service
from service_ambitions.llm.offline import offline_model
from service_ambitions.pipeline.stages import StageBook
from service_ambitions.reference.data import load_reference
from service_ambitions.reference.prompting import load_prompts

SERVICE = Service(
    service_id="svc", name="Careers advice", description="Guidance interviews and job fairs for students."
)


async def ask(prompt: str, output_type: type, seed: int = 0, instructions: str | None = None) -> object:
    agent = Agent(offline_model(), output_type=output_type, instructions=instructions)
    return (await agent.run(prompt, model_settings={"seed": seed})).output


async def test_descriptions_name_the_service_and_each_plateau() -> None:
    book = StageBook(load_reference(), load_prompts(), FeatureCount())
    request = book.descriptions_request(SERVICE)
    descriptions = book.read_descriptions(await ask(request.prompt, request.output_type))  # type: ignore[arg-type]
    assert set(descriptions) == {p.id for p in book.reference.plateaus}
    assert "Careers advice" in descriptions["enhanced"]
    assert "plateau" not in descriptions["enhanced"].lower()  # it describes the service, not the plateau
    assert descriptions["enhanced"] != descriptions["foundational"]


async def test_same_prompt_and_seed_give_the_same_answer_and_other_seeds_differ() -> None:
    book = StageBook(load_reference(), load_prompts(), FeatureCount())
    plateau = book.reference.plateaus[2]
    request = book.features_request(SERVICE, plateau, "Pilots.", [])
    first = await ask(request.prompt, request.output_type, seed=1)
    assert first == await ask(request.prompt, request.output_type, seed=1)
    assert first != await ask(request.prompt, request.output_type, seed=2)


async def test_mapping_picks_only_ids_listed_in_the_prompt() -> None:
    book = StageBook(load_reference(), load_prompts(), FeatureCount())
    catalogue = book.reference.catalogue("data")
    score = FeatureScore(level=3, label="Defined", justification="x")
    features = [
        Feature(feature_id=f"f{i}", name=name, description=name, score=score, customer_type="learners")
        for i, name in enumerate(["Graduate outcomes tracker", "Consent preferences centre"])
    ]
    request = book.mapping_request(SERVICE, book.reference.plateaus[2], catalogue, features)
    listed = set(re.findall(r"^\| (DATA-[^ ]+) \|", request.instructions, re.MULTILINE))
    answer = await ask(request.prompt, request.output_type, instructions=request.instructions)
    result = book.read_mapping(answer, catalogue, features)  # type: ignore[arg-type]
    assert result.dropped == []
    picked = [m.item for items in result.items.values() for m in items]
    assert picked
    assert set(picked) <= listed
    assert result.items["f0"][0].item == "DATA-OUTCOMES"  # the most relevant row wins


async def test_plain_text_output_is_a_sentence() -> None:
    text = (await Agent(offline_model()).run("Service: Parking (p1)\nDescription: Permits for staff cars.")).output
    assert text.startswith("At the current plateau, Parking")
