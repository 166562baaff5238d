#!/usr/bin/env bash
# Wheels for the lent GPU machine, fetched here: its image has torch, transformers, pyarrow and
# pandas but no Ray, Optuna or datasets, it reaches no index, and a call carries at most 64 MiB.
# Downloads the versions this .venv has of what the image lacks, for CPython 3.12 on x86-64, into
# .whl/ (ignored by git), and drops Ray's Java jars (32 MB of its 79 MB wheel; lrsweep runs no Java
# workers) so that all fits. Then run benchmarks/cuda_check.sh there with `.whl` carried.
# Usage: benchmarks/cuda_wheels.sh [python]   (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
NEEDED="ray optuna colorlog alembic sqlalchemy mako pytorch-optimizer jsonschema jsonschema-specifications
        referencing rpds-py datasets dill multiprocess"
pins=$("$PY" -c "import importlib.metadata as m, sys; print(' '.join(f'{d}=={m.version(d)}' for d in sys.argv[1:]))" \
       $NEEDED)
rm -rf .whl && mkdir .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $pins
"$PY" - <<'PY'
"""Rewrite Ray's wheel without ray/jars/, its RECORD to match (pip installs what RECORD lists)."""
import pathlib
import zipfile

(wheel,) = pathlib.Path(".whl").glob("ray-*.whl")
trimmed = wheel.with_suffix(".trimmed")
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        if info.filename.startswith("ray/jars/"):
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            data = b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"ray/jars/"))
        dst.writestr(info, data)
trimmed.replace(wheel)
PY
du -ch .whl/*.whl | tail -1
