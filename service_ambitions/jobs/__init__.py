"""The application layer: what the commands ask the library to do.

Each module holds one job concern:

- :mod:`.setup`: settings → reference data, prompts, models and the cache, all checked
  (:func:`prepare`, :func:`open_cache`);
- :mod:`.checks`: ``validate``'s pre-flight checks, each on its own;
- :mod:`.plan`: the dry-run estimate of a run or a map (calls, cache hits, tokens, cost);
- :mod:`.inputs`: what a job reads (the services still to do, the records to map);
- :mod:`.batch`: batch mode's part of a job (waves of batches, detaching, collecting);
- :mod:`.run`: ``run`` (:func:`generate`) and ``map`` (:func:`remap`), recorded from start
  to end.

The CLI calls only these and the read-side modules (``usage``, ``runs``, ``cache``).
"""

from __future__ import annotations

from .batch import Collect, check_detach, collect_job, leaves_batches
from .checks import Check, InputScan, run_checks, scan_input
from .plan import Estimate, StageEstimate, estimate, estimate_remap
from .run import RunResult, generate, remap
from .setup import Prepared, open_cache, prepare, retry_policy

__all__ = [
    "Check",
    "Collect",
    "Estimate",
    "InputScan",
    "Prepared",
    "RunResult",
    "StageEstimate",
    "check_detach",
    "collect_job",
    "estimate",
    "estimate_remap",
    "generate",
    "leaves_batches",
    "open_cache",
    "prepare",
    "remap",
    "retry_policy",
    "run_checks",
    "scan_input",
]
