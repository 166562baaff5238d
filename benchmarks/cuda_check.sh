#!/usr/bin/env bash
# The checks that need a GPU, in one call on a lent CUDA machine (the suite itself runs without one):
# a population of members equals each member's run_trial on CUDA (grouped convolutions: to 1e-5),
# bf16 mixed precision trains the text path's autocast, and the population benchmark at K up to 256.
# Usage: benchmarks/cuda_check.sh [python]   (default .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
"$PY" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible"
print("device:", torch.cuda.get_device_name(0), "bf16:", torch.cuda.is_bf16_supported())
from trainables import run_trial
from trainables.population import run_population
configs = [{"workload": "synthetic", "workload_options": {"n_train": 1024}, "strategy": s, "seed": seed,
            "epochs": 2, "stage": "seed", "device": "cuda"} for s in ("adam", "dals", "sam") for seed in (0, 1)]
for start in range(0, len(configs), 2):
    pair = configs[start:start + 2]
    together = run_population(pair)
    for got, config in zip(together, pair):
        alone = run_trial(config)
        gap = max(abs(a["test_accuracy"] - b["test_accuracy"]) for a, b in zip(got, alone))
        print(f"{config['strategy']} seed {config['seed']}: population vs alone, max |test acc gap| {gap:.2e}")
        assert gap <= 0.02, gap
PY
"$PY" benchmarks/population.py --device cuda --workloads synthetic,cifar10 --ks 1,16,64,256 --repeats 2 \
    --strategies fixed_sgd,adam,dals,sam
