"""Reference data and prompts: plateaus, roles, catalogues, prompt templates, output schemas.

- :mod:`.data`: plateaus, roles, catalogues and facet models, read from JSON (defaults
  ship in ``defaults/``);
- :mod:`.prompting`: the Markdown templates (``prompts/``) and the blocks rendered into them;
- :mod:`.outputs`: each stage's output type, built from the reference data;
- :mod:`.shortlist`: BM25 shortlists of big catalogues.

May import: ``core``, ``config``.
"""

__all__: list[str] = []
