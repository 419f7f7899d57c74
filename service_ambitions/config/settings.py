"""Settings: every knob of a run, from defaults, a YAML file, ``.env``, ``SA_*`` variables and flags.

Precedence, lowest first: field defaults < ``config/app.yaml`` (or ``--config FILE``) <
``.env`` < ``SA_*`` environment variables < command-line flags. Nested values merge across
sources (``SA_FEATURES_PER_ROLE__MAX=6`` changes only ``max``).

Provider credentials are not settings: pydantic-ai reads them from the provider's own
variables (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``…), so they never pass through here.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from service_ambitions.config.cache_mode import CacheMode, Eviction, default_cache_dir, parse_age
from service_ambitions.config.files import DEFAULT_CONFIG_PATH, check_variables, dotenv, find_config, read_settings_file
from service_ambitions.core.errors import ConfigError
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import ModelPrice

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "BatchOverrides",
    "BatchSettings",
    "FeatureCount",
    "LimitSettings",
    "Overrides",
    "QualitySettings",
    "ReferenceFiles",
    "RetrySettings",
    "Settings",
    "ShortlistSettings",
    "StageModelOverrides",
    "load_settings",
]


class StageModelOverrides(BaseModel):
    """Models for single stages; an unset stage uses ``model``.

    A list (or a comma-separated string) names fallbacks: when the first model's provider
    fails after its retries, the next one answers (pydantic-ai ``FallbackModel``).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    descriptions: str | list[str] | None = None
    """Model(s) for the plateau descriptions call."""
    features: str | list[str] | None = None
    """Model(s) for the feature generation calls."""
    mapping: str | list[str] | None = None
    """Model(s) for the catalogue mapping calls."""
    judge: str | list[str] | None = None
    """Model(s) that score roadmaps in ``eval`` (``--judge-model``); unset: ``eval`` has no judge."""


class FeatureCount(BaseModel):
    """How many features each role gets at each plateau."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    min: int = Field(default=2, ge=1)
    """Fewest features per role and plateau."""
    max: int = Field(default=4, ge=1)
    """Most features per role and plateau."""

    @model_validator(mode="after")
    def _ordered(self) -> FeatureCount:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class RetrySettings(BaseModel):
    """How hard to try each HTTP request to a provider."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    attempts: int = Field(default=5, ge=1, le=20)
    """Attempts per request, the first included (429, 408, 409, 5xx and dropped connections are retried)."""
    max_wait_s: float = Field(default=60.0, gt=0)
    """Longest single wait in seconds; a server asking for longer (Retry-After) is not retried early."""
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Seconds one HTTP attempt may take."""


class LimitSettings(BaseModel):
    """How hard a run may press on providers."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    """Requests per minute across the run (unset: no rate limit; set it to the provider's quota)."""
    tokens_per_minute: int | None = Field(default=None, ge=1)
    """Estimated tokens per minute across the run (unset: no limit)."""
    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive failed calls to one provider that pause it."""
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    """How long a paused provider gets before one probe call tests it."""
    unreachable_calls: int | None = Field(default=3, ge=1)
    """Calls in a row that cannot connect, none having reached the provider yet, that stop the run (null: never)."""
    call_input_tokens: int | None = Field(default=None, ge=1)
    """Most input tokens one call may use, retries included (unset: no limit)."""
    call_output_tokens: int | None = Field(default=None, ge=1)
    """Most output tokens one call may use, retries included (unset: no limit)."""
    follow_rate_headers: bool = True
    """Pace requests by the limits providers announce in their rate-limit headers, before they answer 429."""


class BatchSettings(BaseModel):
    """Batch mode (``--batch``): requests go through the providers' batch APIs at batch prices."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    enabled: bool = False
    """Send every request the cache does not answer through the provider's batch API."""
    max_requests: int = Field(default=1000, ge=1, le=50_000)
    """Most requests in one batch (the provider's own limit caps it)."""
    max_wait_s: float = Field(default=10.0, gt=0)
    """How long the oldest waiting request waits for others before its batch is submitted."""
    poll_interval_s: float = Field(default=30.0, gt=0)
    """First wait before checking a submitted batch; each later wait is half as long again."""
    max_poll_interval_s: float = Field(default=600.0, gt=0)
    """Longest wait between two checks of a batch."""
    max_resubmissions: int = Field(default=2, ge=0, le=10)
    """Times a request that expired or failed with a 429/5xx is sent again in a new batch."""
    services: int = Field(default=10_000, ge=1)
    """Services in progress at once: their requests share the batches of each wave."""

    @model_validator(mode="after")
    def _ordered(self) -> BatchSettings:
        if self.max_poll_interval_s < self.poll_interval_s:
            raise ValueError(
                f"max_poll_interval_s ({self.max_poll_interval_s}) is shorter than poll_interval_s "
                f"({self.poll_interval_s})"
            )
        return self


class ShortlistSettings(BaseModel):
    """How big catalogues are cut down before a mapping call."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    threshold: int | None = Field(default=150, ge=1)
    """Catalogues with more items than this send each mapping call a shortlist, not every item (null: never)."""
    size: int = Field(default=40, ge=1)
    """Most items in a shortlist: those most relevant to the plateau's features, ranked by BM25."""


class QualitySettings(BaseModel):
    """What ``check`` counts as a defect in a roadmap, and how strictly."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    skip: list[str] = Field(default_factory=list)
    """Rules not to run, by id (``service-ambitions check --help`` lists them)."""
    level_copy_share: float = Field(default=0.6, ge=0, le=1)
    """Share of a service's features whose level equals their plateau's number above which the levels look copied."""
    similarity: float = Field(default=0.7, gt=0, le=1)
    """Word overlap (Jaccard, name and description) from which two features count as the same one repeated."""
    max_dropped_items: int = Field(default=3, ge=0)
    """Invented catalogue ids a service's mapping calls may have dropped before it is a finding."""
    vendors: list[str] | None = None
    """Vendor and product names no roadmap should name; null: the packaged list (``reference/defaults/vendors.txt``)."""
    acronyms: list[str] = Field(default_factory=lambda: ["UK", "EU", "ID"])
    """Acronyms every reader knows, which need no spelling out."""


class ReferenceFiles(BaseModel):
    """Where plateaus, roles and catalogues come from; unset means the packaged defaults."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    plateaus: Path | None = None
    """JSON list of plateaus."""
    roles: Path | None = None
    """JSON list of roles (customer types)."""
    catalogues: list[Path] | None = None
    """Catalogue JSON files; each is a bare list of items or {field, label, facets, items}."""


class Settings(BaseSettings):
    """All settings of a run. Field names match their ``SA_`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="SA_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        # .env files commonly hold other tools' variables; unknown YAML keys are
        # still reported, by load_settings.
        extra="ignore",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    model: str = "openai:gpt-4o-mini"
    """Model for every stage: a pydantic-ai 'provider:model' name, or 'offline' for the built-in synthetic model."""
    models: StageModelOverrides = Field(default_factory=StageModelOverrides)
    """Per-stage model overrides."""
    concurrency: int = Field(default=4, ge=1, le=256)
    """Services processed at the same time."""
    max_in_flight: int = Field(default=8, ge=1, le=512)
    """LLM calls in flight at once, across all services."""
    workers: int = Field(default=1, ge=1, le=64)
    """Processes that run the services (each gets its share of concurrency, limits and budget); 1: this one."""
    features_per_role: FeatureCount = Field(default_factory=FeatureCount)
    """Number of features per role and plateau."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    """Sampling temperature sent to the model; unset leaves the provider's default."""
    seed: int = 0
    """Seed sent to models that accept one; makes the offline model's output reproducible."""
    max_output_tokens: int = Field(default=4096, ge=64)
    """Longest answer a call may return, in tokens; also what a budget reserves for each answer."""
    prompt_cache: bool | Literal["5m", "30m", "1h", "12h"] = False
    """Ask providers that need asking (Anthropic, Bedrock, OpenRouter) to cache each stage's shared part; a
    retention ('5m', '1h', …) picks how long. OpenAI caches it by itself. Cache writes cost more than input."""
    max_cost: Decimal | None = Field(default=None, gt=0)
    """Budget in USD for the whole run (resumed segments included): no call starts that could pass it."""
    warn_cost: str | None = Field(default=None, pattern=r"^\s*(\d+(\.\d+)?)\s*%?\s*$")
    """Say once when spending reaches this: USD ("2.50") or a share of max_cost ("80%"); the run goes on."""
    allow_unknown_prices: bool = False
    """With max_cost: run even with models genai-prices has no price for (their calls count as $0)."""
    retry: RetrySettings = Field(default_factory=RetrySettings)
    """HTTP retries and timeouts."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    """Rate limits, the circuit breaker and per-call token limits."""
    output_retries: int = Field(default=2, ge=0, le=10)
    """Extra attempts when the model's answer fails validation."""
    batch: BatchSettings = Field(default_factory=BatchSettings)
    """Batch mode: sizes and waits of provider batches."""
    shortlist: ShortlistSettings = Field(default_factory=ShortlistSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    """Shortlists of big catalogues for mapping calls; ids are still checked against the whole catalogue."""
    reuse_imported: bool = False
    """Answer a call from an answer imported by 'migrate cache' for the same service, stage and plateau."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Per model name (as in ``model:``), USD per million tokens; overrides genai-prices (and a plug-in's)."""
    strict: bool = False
    """Fail a service when the model names catalogue ids that do not exist (default: drop and count them)."""
    reference: ReferenceFiles = Field(default_factory=ReferenceFiles)
    """Reference data files."""
    prompts_dir: Path | None = None
    """Directory of prompt templates overriding the packaged ones by file name."""
    runs_dir: Path | None = None
    """Where each run's manifest and events are kept (default: the platform's user state directory)."""
    cache_dir: Path | None = None
    """Where answers and transcripts are cached (default: the platform's user cache directory)."""
    cache_mode: CacheMode = CacheMode.READ
    cache_ttl: str | dict[Stage, str] | None = None
    """How long an answer stays good: '30d' for every stage, or per stage ({mapping: 7d}); older is a miss, replaced."""
    """read: use hits, fill misses; refresh: recompute and overwrite; readonly: use hits, never write; off."""
    cache_size_limit: int | None = Field(default=None, ge=1)
    """Cache size in bytes at which entries are evicted; only applies with an eviction policy."""
    cache_eviction: Eviction = "none"
    """Eviction policy once cache_size_limit is reached; 'none' (the default) never drops an answer."""
    max_line_bytes: int = Field(default=1 << 20, ge=1024)
    """Longest input line read, in bytes; a longer line is quarantined (its first 4 KiB kept)."""
    heartbeat_s: float = Field(default=10.0, gt=0)
    """Without a terminal (CI logs, nohup files): seconds between plain progress lines."""

    @field_validator("cache_ttl")
    @classmethod
    def _durations(cls, value: str | dict[Stage, str] | None) -> str | dict[Stage, str] | None:
        for text in [value] if isinstance(value, str) else (value or {}).values():
            parse_age(text)  # ValueError: pydantic says which setting
        return value

    def cache_ttls(self) -> dict[Stage, timedelta]:
        """Per stage, how long its cached answers stay good (stages without a TTL keep theirs for ever)."""
        if self.cache_ttl is None:
            return {}
        if isinstance(self.cache_ttl, str):
            return dict.fromkeys(Stage, parse_age(self.cache_ttl))
        return {stage: parse_age(text) for stage, text in self.cache_ttl.items()}

    @property
    def snapshots(self) -> bool:
        """Whether whole services are cached as snapshots: not with a ``cache_ttl`` (a snapshot has no age)."""
        return self.cache_ttl is None

    def warn_amount(self) -> Decimal | None:
        """The spending at which a run warns, in USD (a share resolved against max_cost); None: no warning."""
        if self.warn_cost is None:
            return None
        text = self.warn_cost.strip()
        if not text.endswith("%"):
            return Decimal(text)
        if self.max_cost is None:
            raise ConfigError(
                f"warn_cost {text} is a share of max_cost, and no max_cost is set",
                hint="give --max-cost too, or an amount in USD (--warn-cost 2.50)",
            )
        return self.max_cost * Decimal(text[:-1].strip()) / 100

    def runs_directory(self) -> Path:
        """Where run journals go: the setting, or the platform's user state directory."""
        if self.runs_dir is not None:
            return self.runs_dir
        from platformdirs import user_state_dir

        return Path(user_state_dir("service-ambitions", appauthor=False)) / "runs"

    def cache_directory(self) -> Path:
        """The cache directory in use: the setting, or the platform's user cache directory."""
        return self.cache_dir or default_cache_dir()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """First source wins: flags, environment, .env, YAML file, then defaults."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            YamlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    def model_chain(self, stage: Stage) -> list[str]:
        """The models that answer ``stage``: the first, then its fallbacks in order."""
        chosen: str | list[str] = getattr(self.models, stage.value) or self.model
        names = chosen.split(",") if isinstance(chosen, str) else chosen
        return [name.strip() for name in names if name.strip()]

    def model_for(self, stage: Stage) -> str:
        """The model(s) that answer ``stage``, as shown to users: ``a | b`` for a fallback chain."""
        return " | ".join(self.model_chain(stage))


_PREFIX = "SA_"


class BatchOverrides(BaseModel):
    """Batch settings given on the command line (None: flag not given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    max_requests: int | None = None
    max_wait_s: float | None = None


class Overrides(BaseModel):
    """Settings given on the command line, on top of every other source; None means "flag not given".

    A typed seam: a face can only set what is named here, and every value is then validated
    with the file's and the environment's (``load_settings``), with the same messages.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    models: dict[str, str] | None = None
    """Per stage (``descriptions``, ``features``, ``mapping``), its model or fallback chain."""
    seed: int | None = None
    concurrency: int | None = None
    max_in_flight: int | None = None
    workers: int | None = None
    strict: bool | None = None
    cache_mode: CacheMode | None = None
    cache_dir: Path | None = None
    runs_dir: Path | None = None
    prompts_dir: Path | None = None
    max_cost: Decimal | None = None
    warn_cost: str | None = None
    allow_unknown_prices: bool | None = None
    reuse_imported: bool | None = None
    batch: BatchOverrides | None = None

    def given(self) -> dict[str, Any]:
        """The flags given, as settings keys (a nested section only with what was given in it)."""
        given = self.model_dump(exclude_none=True)
        return {key: value for key, value in given.items() if value != {}}


def load_settings(config: Path | None = None, overrides: Overrides | None = None) -> Settings:
    """Build the settings of one invocation.

    Args:
        config: YAML file given with ``--config``; it must exist. Without it, the file
            :func:`find_config` finds is read, if there is one.
        overrides: values from command-line flags.

    Raises:
        ConfigError: the YAML file is missing, unreadable or holds an unknown or invalid
            setting, or an ``SA_*`` variable misspells one.
    """
    if config is not None and not config.is_file():
        raise ConfigError(f"config file {config} does not exist")
    path = config or find_config()
    from_file = read_settings_file(path, Settings)
    check_variables(os.environ, "environment variable", Settings)
    check_variables(dotenv(Path(".env")), ".env variable", Settings)

    class RuntimeSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # The file as read above (keys checked, paths resolved), where YAML ranks.
            file_settings = InitSettingsSource(settings_cls, from_file)
            return init_settings, env_settings, dotenv_settings, file_settings, file_secret_settings

    given = overrides.given() if overrides is not None else {}
    try:
        return RuntimeSettings(**given)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()]
        flagged = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"] and error["loc"][0] in given})
        where = [f"--{key.replace('_', '-')}" for key in flagged]
        where += [str(path)] if path.is_file() else []
        where.append("SA_* variables")
        raise ConfigError(
            f"invalid setting{'s' if len(problems) > 1 else ''} {'; '.join(problems)}",
            hint="check " + ", ".join(where),
        ) from exc
