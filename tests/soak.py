"""Run some tests many times in a row, optionally under load, and count how often they pass.

Not part of the suite (CI runs each test once); this is how the kill and resume tests' reliability
figures in the notes are measured. Each repetition gets its own ``LRSWEEP_KILL_SEED``, so the
kill test lands its kills at other moments every time; the uninterrupted reference sweeps it
compares with are run once and shared by the repetitions (``LRSWEEP_REFERENCES``).

    LRSWEEP_KILL_SAMPLERS=random,qmc python tests/soak.py --times 20 tests/test_sweep_durable.py -k sigkill
    python tests/soak.py --times 20 --load "python -m pytest -q tests" tests/test_sweep_resume.py

``--load`` runs a command beside the repetitions (restarted whenever it ends) and stops it, with its
whole process group, at the end. A failed repetition's output is kept under ``--logs``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Load:
    """A command kept running in its own process group until ``stop``."""

    def __init__(self, command: str | None, log: Path) -> None:
        self.command, self.log, self.proc, self.runs = command, log, None, 0

    def keep_running(self) -> None:
        if self.command and (self.proc is None or self.proc.poll() is not None):
            self.runs += 1
            with open(self.log, "a") as out:
                self.proc = subprocess.Popen(shlex.split(self.command), cwd=ROOT, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=20, help="repetitions (default 20)")
    parser.add_argument("--load", help="a command to run beside the repetitions, restarted when it ends")
    parser.add_argument("--logs", default="soak-logs", help="folder for failed repetitions' output")
    args, pytest_args = parser.parse_known_args(argv)
    if args.times < 1:
        parser.error(f"--times: got {args.times}; allowed: an integer >= 1")
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    load = Load(args.load, logs / "load.log")
    passed = 0
    references = tempfile.mkdtemp(prefix="soak-references-")
    try:
        for i in range(args.times):
            load.keep_running()
            start = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                                 cwd=ROOT, capture_output=True, text=True,
                                 env={"LRSWEEP_REFERENCES": references, **os.environ, "LRSWEEP_KILL_SEED": str(i)})
            seconds = time.monotonic() - start
            ok = run.returncode == 0
            passed += ok
            last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
            if not ok:
                (logs / f"run-{i}.log").write_text(run.stdout + run.stderr)
            print(f"run {i + 1}/{args.times}: {'pass' if ok else 'FAIL'} in {seconds:.0f} s ({last})", flush=True)
    finally:
        load.stop()
    extra = f", load command started {load.runs} time(s)" if args.load else ""
    print(f"{passed}/{args.times} passed{extra}")
    return 0 if passed == args.times else 1


if __name__ == "__main__":
    sys.exit(main())
