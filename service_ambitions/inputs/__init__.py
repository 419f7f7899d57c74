"""What the tool reads from users: services JSONL, records to map, older schema versions.

- :mod:`.jsonl`: reading input lines (bounded, quarantined with reasons) and writing whole lines;
- :mod:`.entries`: what reading yields (accepted, rejected, existing) and quarantine records;
- :mod:`.map_input`: what ``map`` reads (evolution and features-only records);
- :mod:`.migrations`: schema versions and the steps between them.

May import: ``core``, ``config``, ``reference``.
"""

__all__: list[str] = []
