"""Run records, resume and the one-writer lock: everything a run leaves behind besides its output.

- :mod:`.records`: the manifest and events of a run, and reading them back;
- :mod:`.resume`: finding the run to continue, what it already wrote, and input order;
- :mod:`.lock`: one live run per output;
- :mod:`.suspended`: calls waiting on provider batches (batch mode), for the run that collects them;
- :mod:`.batches`: a batch run's batches as its events tell them (``runs show``, ``report``).
"""

from __future__ import annotations

from .batches import BatchRow, RunDetails, batch_rows, run_details
from .lock import output_lock
from .records import (
    TERMINATE,
    Manifest,
    RunCounts,
    RunRecorder,
    RunStatus,
    current_process,
    file_sha256,
    follow_events,
    read_events,
    read_manifest,
    tally_run,
)
from .resume import (
    OpenedRun,
    RunIdentity,
    find_run,
    new_run_id,
    open_run,
    recover_output,
    recover_quarantine,
    refuse_overwrite,
    restore_input_order,
    same_file,
)

__all__ = [
    "TERMINATE",
    "BatchRow",
    "Manifest",
    "OpenedRun",
    "RunCounts",
    "RunDetails",
    "RunIdentity",
    "RunRecorder",
    "RunStatus",
    "batch_rows",
    "current_process",
    "file_sha256",
    "find_run",
    "follow_events",
    "new_run_id",
    "open_run",
    "output_lock",
    "read_events",
    "read_manifest",
    "recover_output",
    "recover_quarantine",
    "refuse_overwrite",
    "restore_input_order",
    "run_details",
    "same_file",
    "tally_run",
]
