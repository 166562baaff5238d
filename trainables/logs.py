"""Library chatter (Hugging Face progress bars, load reports, warnings) goes to a trial's log file.

A sweep's progress output is one line per finished trial; transformers' "Loading weights" bars,
datasets' "Generating train split" bars and their load reports would bury it (with
``LRSWEEP_TRIAL_LOGS=1``, or in a Ray Job's log). ``route_library_logs`` (called by a workload right
after it imports those libraries, so that workloads which never need them never pay for the
import) turns their progress bars off and sends their log records to ``HANDLER``, which writes to
the file ``trial_log(path)`` opened for the running trial, or to stderr outside one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HANDLER", "route_library_logs", "trial_log"]

LIBRARIES = ("transformers", "datasets", "huggingface_hub")


class _TrialLogHandler(logging.Handler):
    """Writes records to the running trial's log file (stderr when no trial log is open)."""

    def __init__(self) -> None:
        super().__init__()
        self.stream = None
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream or sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


HANDLER = _TrialLogHandler()
_routed: set[str] = set()


def route_library_logs() -> None:
    """Progress bars of the loaded Hugging Face libraries off; their records to ``HANDLER`` only."""
    for name in LIBRARIES:
        if name in _routed or name not in sys.modules:
            continue
        if name == "transformers":
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        elif name == "datasets":
            from datasets.utils.tqdm import disable_progress_bars

            disable_progress_bars()
        else:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        logger = logging.getLogger(name)
        logger.handlers = [HANDLER]  # replaces the library's own stderr handler
        logger.propagate = False
        _routed.add(name)


@contextmanager
def trial_log(path: str | Path) -> Iterator[Path]:
    """While the block runs, ``HANDLER`` appends to ``path`` (created with its directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = HANDLER.stream
    with open(path, "a") as f:
        HANDLER.stream = f
        try:
            yield path
        finally:
            HANDLER.stream = previous
