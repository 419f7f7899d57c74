"""``service-ambitions schema``: print the JSON Schema of an output record."""

from __future__ import annotations

import typer

__all__ = ["schema"]


def schema() -> None:
    """Print the JSON Schema of output records.

    One output line is one ServiceEvolution.

    The schema is versioned (meta.schema_version); validate output files against it
    with any JSON Schema tool.

    For example:

    \b
        service-ambitions schema > service-evolution.schema.json
    """
    import json

    from service_ambitions.core.models import SCHEMA_VERSION, ServiceEvolution

    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **ServiceEvolution.model_json_schema()}
    document["title"] = f"ServiceEvolution {SCHEMA_VERSION}"
    typer.echo(json.dumps(document, indent=2))
