"""The result cache: diskcache with a JSON-only disk, its entry format, maintenance and repair.

- :mod:`.store`: :class:`~.store.ResultCache`, the gateway's side (look up, store);
- :mod:`.format`: how entries are keyed, sealed and stored (never unpickled);
- :mod:`.maintenance`: stats, validate and purge, the commands' side;
- :mod:`.repair`: salvaging a damaged database;
- :mod:`.legacy`: answers imported from an older tool's JSON-file cache (``migrate cache``).

May import: ``core``, ``config``, ``reference``, ``inputs``.
"""

__all__: list[str] = []
