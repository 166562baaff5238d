"""An extended sweep's steps (``extensions.json``): its first spec and each ``lrsweep extend`` after it,
and which step added each row. Read by the engine when it writes the tables and by ``sweeps.commands.extend``;
below both, so neither imports the other (docs/DURABILITY.md)."""

from __future__ import annotations

import dataclasses
import json

from sweeps.record.storage import SweepDir
from sweeps.spec.model import STUDY_SEED_STRIDE  # a study j seed run is study 0's seed + j strides
from vocab.contracts import TUNE, Pair

__all__ = ["EXTENSIONS", "stamp", "steps"]

EXTENSIONS = "extensions.json"


def steps(sweep: SweepDir) -> list[dict]:
    """The sweep's steps from ``extensions.json``: its first spec, then each extension (empty: never extended)."""
    text = sweep.read_text(EXTENSIONS)
    return json.loads(text)["steps"] if text else []


def stamp(sweep: SweepDir, records: list) -> tuple[list, dict[str, str] | None]:
    """``records`` (``sweeps.record.results.TrialRecord``) each with the spec hash of the first step that asked for
    it, and each pair's (the step that added the pair); unchanged, with None, for a sweep never extended."""
    found = steps(sweep)
    if not found:
        return records, None

    def first(workload: str, strategy: str, seed: int | None = None) -> str | None:
        for s in found:
            if workload in s["workloads"] and strategy in s["strategies"] and \
                    (seed is None or s["seeds"] == "auto" or seed % STUDY_SEED_STRIDE < int(s["seeds"])):
                return s["spec_hash"]
        return None

    out = [dataclasses.replace(r, spec_hash=first(r.workload, r.strategy, None if r.stage == TUNE else r.seed))
           for r in records]
    pairs = {Pair(w, s).key: h for step in reversed(found) for w in step["workloads"] for s in step["strategies"]
             if (h := first(w, s)) is not None}
    return out, pairs
