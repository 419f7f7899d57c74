"""The three stages of a service: their requests, reading their answers, and the plan of its calls.

The output types come from :mod:`.outputs`, built at run time from the reference data; a
missing plateau, a role without features or a facet of the wrong type is a validation
error that goes back to the model as an output retry.
"""

from __future__ import annotations

import functools
import hashlib
import json
from base64 import b32encode
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from service_ambitions.config.settings import FeatureCount, ShortlistSettings
from service_ambitions.core.models import Feature, FeatureScore, MappedItem, PlateauResult, Service, Stage
from service_ambitions.llm.requests import LLMRequest, Subject
from service_ambitions.reference.data import Catalogue, Plateau, ReferenceData
from service_ambitions.reference.outputs import (
    FeatureDraft,
    descriptions_model,
    features_model,
    field_name,
    mapping_model,
)
from service_ambitions.reference.prompting import (
    PromptSet,
    render_catalogue_items,
    render_facets,
    render_plateaus,
    render_roles,
    render_service,
    render_service_summary,
)
from service_ambitions.reference.shortlist import Shortlister

__all__ = [
    "Call",
    "CallPlan",
    "Described",
    "FeatureIds",
    "Featured",
    "MappingResult",
    "StageBook",
    "Step",
    "record_plateau",
    "remap_plan",
    "service_plan",
]


class FeatureIds:
    """Deterministic, service-scoped feature ids.

    An id is a short hash of the service, plateau, role and feature name, so the same
    inputs always give the same id. Two features of one service that hash alike (the same
    name twice, or a true collision) are told apart by hashing again with a counter, in
    the order the features were produced, which is itself deterministic.
    """

    def __init__(self, service_id: str) -> None:
        self._service_id = service_id
        self._taken: set[str] = set()

    def next(self, plateau_level: int, role_id: str, name: str) -> str:
        """The id of the next feature; never one already given in this service."""
        basis = f"{self._service_id}\0{plateau_level}\0{role_id}\0{' '.join(name.lower().split())}"
        attempt = 0
        while True:
            salted = basis if attempt == 0 else f"{basis}\0{attempt}"
            digest = hashlib.sha256(salted.encode()).digest()
            candidate = b32encode(digest[:5]).decode().lower()
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate
            attempt += 1


@dataclass
class MappingResult:
    """The items each feature relies on in one catalogue, and the ids that were dropped."""

    items: dict[str, list[MappedItem]]
    dropped: list[str] = field(default_factory=list)


class StageBook:
    """Builds each stage's request and reads its answer, for one reference set and prompt set."""

    def __init__(
        self,
        reference: ReferenceData,
        prompts: PromptSet,
        feature_count: FeatureCount,
        shortlist: ShortlistSettings | None = None,
    ) -> None:
        self.reference = reference
        self._prompts = prompts
        self._feature_count = feature_count
        self._roles_text = render_roles(reference.roles)
        self._plateaus_text = render_plateaus(reference.plateaus)
        self._descriptions_type = descriptions_model(reference.plateaus)
        self._features_type = features_model(reference.roles, feature_count)
        self._mapping_types = {c.field: mapping_model(c) for c in reference.catalogues}
        shortlist = shortlist or ShortlistSettings(threshold=None)
        self._shortlist_size = shortlist.size
        self._shortlisters = {
            c.field: Shortlister(c)
            for c in reference.catalogues
            if shortlist.threshold is not None and len(c.items) > shortlist.threshold
        }
        # What every call of a stage shares comes first and is rendered once: providers
        # reuse an identical leading part of a request as a cached prefix.
        self._descriptions_instructions = prompts.instructions("descriptions", plateaus=self._plateaus_text)
        self._features_instructions = prompts.instructions(
            "features",
            plateaus=self._plateaus_text,
            roles=self._roles_text,
            min_features=feature_count.min,
            max_features=feature_count.max,
        )
        self._catalogue_values = {c.field: self._catalogue_static(c) for c in reference.catalogues}
        self._mapping_instructions = {
            c.field: prompts.instructions("mapping", **self._catalogue_values[c.field]) for c in reference.catalogues
        }

    def _catalogue_static(self, catalogue: Catalogue) -> dict[str, str]:
        shortlisted = catalogue.field in self._shortlisters
        items = (
            f"The catalogue holds {len(catalogue.items):,} items; those most relevant to the features are listed "
            "with the request."
            if shortlisted
            else render_catalogue_items(catalogue)
        )
        return {
            "plateaus": self._plateaus_text,
            "catalogue_label": catalogue.label,
            "catalogue_description": catalogue.description,
            "catalogue_items": items,
            "facets": render_facets(catalogue),
        }

    @functools.cached_property
    def schema_sha256(self) -> str:
        """SHA-256 over every output type's JSON Schema: what the answers of this book look like."""
        types = [self._descriptions_type, self._features_type, *self._mapping_types.values()]
        schemas = [model.model_json_schema() for model in types]
        return hashlib.sha256(json.dumps(schemas, sort_keys=True).encode()).hexdigest()

    # -- descriptions -------------------------------------------------------------------

    def descriptions_request(self, service: Service) -> LLMRequest[BaseModel]:
        """One call: the service described at every plateau."""
        prompt = self._prompts.request("descriptions", service=render_service(service), plateaus=self._plateaus_text)
        return LLMRequest(
            Stage.DESCRIPTIONS,
            self._descriptions_instructions,
            prompt,
            self._descriptions_type,
            subject=Subject(service.service_id),
        )

    def read_descriptions(self, output: BaseModel) -> dict[str, str]:
        """Plateau id → description of the service at that plateau."""
        return {plateau.id: getattr(output, field_name(i)) for i, plateau in enumerate(self.reference.plateaus)}

    # -- features -----------------------------------------------------------------------

    def features_request(
        self, service: Service, plateau: Plateau, description: str, earlier: Sequence[tuple[Plateau, Feature]]
    ) -> LLMRequest[BaseModel]:
        """One call per plateau; it sees the features of earlier plateaus so the progression builds."""
        prompt = self._prompts.request(
            "features",
            service=render_service(service),
            roles=self._roles_text,
            plateau_level=plateau.level,
            plateau_name=plateau.name,
            plateau_description=plateau.describe(),
            service_description=description,
            earlier_features=self._earlier_text(earlier),
            min_features=self._feature_count.min,
            max_features=self._feature_count.max,
        )
        subject = Subject(service.service_id, plateau.level)
        return LLMRequest(Stage.FEATURES, self._features_instructions, prompt, self._features_type, subject=subject)

    def _earlier_text(self, earlier: Sequence[tuple[Plateau, Feature]]) -> str:
        if not earlier:
            return "None: this is the first plateau."
        roles = {role.role_id: role.name for role in self.reference.roles}
        # The plateau just below is what this one builds on: its features come with their
        # descriptions; older ones by name, enough not to repeat them, at a third of the tokens.
        latest = earlier[-1][0].level
        return "\n".join(
            f"- Plateau {plateau.level}, {roles.get(feature.customer_type, feature.customer_type)}: {feature.name}"
            + (f": {feature.description}" if plateau.level == latest else "")
            for plateau, feature in earlier
        )

    def read_features(self, output: BaseModel, plateau: Plateau, ids: FeatureIds) -> list[Feature]:
        """The answer's features, in role order, with their ids."""
        features: list[Feature] = []
        for i, role in enumerate(self.reference.roles):
            drafts: list[FeatureDraft] = getattr(output, field_name(i))
            # Validating these few fields in pydantic-core is cheaper than model_construct.
            features += [
                Feature(
                    feature_id=ids.next(plateau.level, role.role_id, draft.name),
                    name=draft.name,
                    description=draft.description,
                    score=FeatureScore.model_validate(draft.score.model_dump()),
                    customer_type=role.role_id,
                    mappings={},
                )
                for draft in drafts
            ]
        return features

    # -- mapping ------------------------------------------------------------------------

    def mapping_request(
        self,
        service: Service,
        plateau: Plateau,
        catalogue: Catalogue,
        features: Sequence[Feature],
        description: str = "",
    ) -> LLMRequest[BaseModel]:
        """One call per plateau and catalogue: which items each feature relies on.

        The request carries the service, the plateau and the service's description there,
        so the model matches features on what they involve, not on the words they share.
        A big catalogue is cut to the items most relevant to these features (see
        ``shortlist.py``); the rest of the prompt is the same either way.
        """
        shortlist = ""
        shortlister = self._shortlisters.get(catalogue.field)
        if shortlister is not None:
            picked = shortlister.pick([f"{f.name} {f.description}" for f in features], self._shortlist_size)
            shortlist = f"\n## {catalogue.label} items to choose from\n\n{render_catalogue_items(catalogue, picked)}\n"
        prompt = self._prompts.request(
            "mapping",
            **self._catalogue_values[catalogue.field],
            service=render_service(service),
            service_summary=render_service_summary(service),
            service_name=service.name,
            plateau_level=plateau.level,
            plateau_name=plateau.name,
            plateau_description=plateau.describe(),
            service_description=description or "(not known: map from the features alone)",
            shortlist=shortlist,
            features="\n".join(f"- `{f.feature_id}` {f.name}: {f.description}" for f in features),
        )
        subject = Subject(service.service_id, plateau.level, catalogue.field, tuple(f.feature_id for f in features))
        return LLMRequest(
            Stage.MAPPING,
            self._mapping_instructions[catalogue.field],
            prompt,
            self._mapping_types[catalogue.field],
            subject=subject,
        )

    def read_mapping(self, output: BaseModel, catalogue: Catalogue, features: Iterable[Feature]) -> MappingResult:
        """Keep the items that exist in the catalogue; count the ones the model invented."""
        known = catalogue.item_ids
        has_facets = bool(catalogue.facets)
        result = MappingResult(items={feature.feature_id: [] for feature in features})
        for entry in getattr(output, "mappings", []):
            chosen = result.items.get(entry.feature_id)
            if chosen is None:
                continue
            for pick in entry.items:
                if pick.item not in known:
                    result.dropped.append(pick.item)
                elif all(existing.item != pick.item for existing in chosen):
                    facets = pick.facets if has_facets else None
                    # Facets were validated against the catalogue's facet model with the answer.
                    chosen.append(MappedItem(item=pick.item, facets=facets.model_dump() if facets else None))
        return result


def record_plateau(result: PlateauResult, known: Sequence[Plateau] = ()) -> Plateau:
    """The plateau of a record, as a mapping prompt needs it.

    The reference plateau of that id when the run knows it, else the level and name the
    record carries.
    """
    for plateau in known:
        if plateau.id == result.plateau_id and plateau.level == result.plateau:
            return plateau
    return Plateau.model_construct(id=result.plateau_id, name=result.plateau_name, level=result.plateau, description="")


# -- the stage plan: the one place the order of a service's calls is written ---------------


@dataclass(frozen=True)
class Call:
    """One LLM call of the plan; a mapping call carries what reading its answer needs."""

    request: LLMRequest[BaseModel]
    plateau: Plateau | None = None
    catalogue: Catalogue | None = None
    features: Sequence[Feature] = ()


@dataclass(frozen=True)
class Described:
    """The descriptions answer, read: plateau id → description (empty when not known)."""

    descriptions: dict[str, str]


@dataclass(frozen=True)
class Featured:
    """One plateau's features answer, read, with their ids (empty when not known)."""

    plateau: Plateau
    features: list[Feature]


Step = Call | Described | Featured
CallPlan = Generator[Step, BaseModel | None, None]
"""What a driver walks: send the answer of each descriptions and features call back (None
when it is not known); mapping calls and the notes need nothing back."""


def service_plan(book: StageBook, service: Service) -> CallPlan:
    """The calls of one service, in the order they must run: what ``run`` does and ``--dry-run`` counts.

    Descriptions first; then, plateau by plateau, the features (each call seeing the
    features of earlier plateaus) and the mapping of those features to every catalogue,
    which may run while the next plateau's features are generated.
    """
    answer = yield Call(book.descriptions_request(service))
    descriptions = book.read_descriptions(answer) if answer is not None else {}
    yield Described(descriptions)
    ids = FeatureIds(service.service_id)
    earlier: list[tuple[Plateau, Feature]] = []
    for plateau in book.reference.plateaus:
        request = book.features_request(service, plateau, descriptions.get(plateau.id, ""), earlier)
        answer = yield Call(request, plateau)
        features = book.read_features(answer, plateau, ids) if answer is not None else []
        yield Featured(plateau, features)
        earlier += [(plateau, feature) for feature in features]
        for catalogue in book.reference.catalogues:
            request = book.mapping_request(service, plateau, catalogue, features, descriptions.get(plateau.id, ""))
            yield Call(request, plateau, catalogue, features)


def remap_plan(
    book: StageBook, service: Service, plateaus: Sequence[PlateauResult], catalogues: Sequence[Catalogue]
) -> Generator[Call, BaseModel | None, None]:
    """The mapping calls ``map`` makes for one record: each plateau with features, each chosen catalogue."""
    for result in plateaus:
        if not result.features:
            continue
        plateau = record_plateau(result, book.reference.plateaus)
        for catalogue in catalogues:
            request = book.mapping_request(service, plateau, catalogue, result.features, result.service_description)
            yield Call(request, plateau, catalogue, result.features)
