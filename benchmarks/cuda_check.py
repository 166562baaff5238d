"""Every check that needs a GPU, in one process that writes its figures to one file.

The test suite runs without a GPU, so the CUDA paths are checked here, on a lent CUDA machine, in
one call (``benchmarks/cuda_check.sh`` wraps this file). Sections, each timed, each line of figures
also written to ``--out``:

- ``device``: the GPU, its memory and bf16 support;
- ``trainable``: ``run_trial`` of the MLP, the CIFAR-10 ConvNet (generated images) and a tiny
  DistilBERT text fine-tune on the device, every epoch ``ok``; the text path's bf16 autocast;
- ``forward``: the forward kinds on stacked parameters (per-member convolutions, one grouped
  convolution, ``torch.func.vmap``) against each member's own module, and their speed;
- ``update``: for every built-in strategy, a population on the stacked update against the same
  population on each member's own Stepper (``run_population(stacked=False)``);
- ``alone``: a population against each member's ``run_trial`` (grouped convolutions on CUDA);
- ``memory``: peak memory per member, and the population size that the device's free memory holds;
- ``sweep``: a two-pair ``lrsweep run`` with ``resources.gpu: 0.25`` on an embedded Ray;
- ``benchmark``: ``benchmarks/population.py`` on the device, K up to 256, stopped at ``--seconds``.

A section that fails is recorded as FAIL with its error and the others still run; the exit status
is 1 if any failed. ``--device cpu`` runs the same code on the CPU (``--quick``: small sizes; the
suite does, so the script is known to run before a GPU is lent); a section that only means
something on CUDA says SKIP there.

    python benchmarks/cuda_check.py                            # on a CUDA machine: figures in $OUT or .
    python benchmarks/cuda_check.py --device cpu --quick --out /tmp/cuda_check.txt
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project and its offline data writers

from offline_data import text_spec_workload, write_cifar10  # noqa: E402

from strategies import list_strategies  # noqa: E402
from strategies.stacked import has_stacked_form  # noqa: E402
from trainables import get_workload, run_trial  # noqa: E402
from trainables.forward import Stacked, Vmapped, grouped_conv_pays, has_conv, pass_seconds  # noqa: E402
from trainables.population import _configs, _Population, run_population  # noqa: E402
from trainables.workloads.cifar10 import ConvNet  # noqa: E402
from vocab import contracts  # noqa: E402

SECTIONS = ("device", "trainable", "forward", "update", "alone", "memory", "sweep", "benchmark")
GAP = 0.02  # the bound on a population member's final accuracy against its twin alone
CIFAR_OPTIONS = {"verify_checksums": False, "val_size": 64}


class Check:
    """The run's shared state: the device, the data written once, and the figures file."""

    def __init__(self, device: str, quick: bool, out: Path, data: Path, seconds: float) -> None:
        self.device, self.quick, self.out, self.data = device, quick, out, data
        self.deadline = time.monotonic() + seconds
        self.cuda = device == "cuda"
        self.cifar_root = str(write_cifar10(data / "cifar10", per_batch=32 if quick else 200, n_test=64))
        self.text_options = text_spec_workload(data / "text", {"train": 32, "test": 16})["trec6"]
        self.failed: list[str] = []

    def line(self, text: str) -> None:
        print(text, flush=True)
        with self.out.open("a") as f:
            f.write(text + "\n")

    def config(self, workload: str, strategy: str = "adam", seed: int = 0, epochs: int = 1, **extra) -> dict:
        options = {"synthetic": {"n_train": 256 if self.quick else 1024}, "cifar10": CIFAR_OPTIONS,
                   "trec6": self.text_options}[workload]
        data_dir = self.cifar_root if workload == "cifar10" else None
        return {"workload": workload, "workload_options": options, "strategy": strategy, "seed": seed,
                "epochs": epochs, "stage": contracts.SEED, "device": self.device, "data_dir": data_dir, **extra}


def final_gap(a: list[dict], b: list[dict]) -> float:
    """Largest |difference| of two histories' accuracies, epoch by epoch."""
    return max(abs(x[key] - y[key]) for x, y in zip(a, b, strict=True)
               for key in ("val_accuracy", "test_accuracy") if key in y)


def assert_ok(history: list[dict], what: str) -> None:
    bad = [h["status"] for h in history if h["status"] != "ok"]
    assert not bad, f"{what}: status {bad}"


def section_device(c: Check) -> None:
    c.line(f"torch {torch.__version__}, device {c.device}")
    if c.cuda:
        free, total = torch.cuda.mem_get_info()
        major, minor = torch.cuda.get_device_capability()
        c.line(f"{torch.cuda.get_device_name(0)}, compute capability {major}.{minor}, "
               f"bf16 {torch.cuda.is_bf16_supported()}, memory {free / 2**30:.1f} GiB free of {total / 2**30:.1f}")


def section_trainable(c: Check) -> None:
    for workload, epochs in (("synthetic", 2), ("cifar10", 1), ("trec6", 1)):
        start = time.perf_counter()
        history = run_trial(c.config(workload, epochs=epochs))
        assert_ok(history, workload)
        assert history[-1]["device"].startswith(c.device), history[-1]["device"]
        c.line(f"run_trial {workload}: {len(history)} epoch(s) ok on {history[-1]['device']}, "
               f"test accuracy {history[-1]['test_accuracy']:.4f}, {time.perf_counter() - start:.1f} s")
    # The text path's autocast: the model's logits come out in bf16 on CUDA, in fp32 elsewhere.
    population = _Population(_configs([c.config("trec6")]))
    model = population.members[0].model
    inputs = next(population.train.batches(4, shuffle=False, generator=torch.Generator()))[0]
    with population.autocast():
        logits = model(inputs)
    want = torch.bfloat16 if c.cuda and torch.cuda.is_bf16_supported() else torch.float32
    assert logits.dtype == want, (logits.dtype, want)
    c.line(f"text path: logits {logits.dtype} under the population's autocast (expected {want})")


def _timed(fn: Callable[[], torch.Tensor], device: str, repeats: int) -> float:
    """Median seconds of ``fn``'s forward and backward after one warm-up."""
    times = [pass_seconds(fn, torch.device(device)) for _ in range(repeats + 1)]
    return sorted(times[1:])[len(times[1:]) // 2]


def section_forward(c: Check) -> None:
    from torch.func import functional_call

    mlp = get_workload("synthetic").build_model(get_workload("synthetic").validate_options({}), None)
    batch = 16 if c.quick else 64
    for name, template, shape in (("MLP", mlp, (batch, 64)), ("ConvNet", ConvNet(), (batch, 3, 32, 32))):
        for k in ((4,) if c.quick else (4, 16, 64)):
            template = template.to(c.device)
            gen = torch.Generator(device="cpu").manual_seed(k)
            params = {n: (torch.randn((k, *p.shape), generator=gen) * 0.05).to(c.device).requires_grad_()
                      for n, p in template.named_parameters()}
            x = torch.randn((k, *shape), generator=gen).to(c.device)
            with torch.no_grad():
                own = torch.stack([functional_call(template, {n: p[i] for n, p in params.items()}, (x[i],))
                                   for i in range(k)])
            kinds = {"stacked": Stacked(template, k, grouped=False), "vmap": Vmapped(template)}
            if x.dim() == 5:
                kinds["stacked-grouped"] = Stacked(template, k, grouped=True)
            figures = []
            for kind, forward in kinds.items():
                fn = functools.partial(forward, params, x)
                with torch.no_grad():
                    gap = (fn() - own).abs().max().item()
                seconds = _timed(fn, c.device, 3 if c.quick else 10)
                figures.append((seconds, kind))
                c.line(f"forward {name} K={k} {kind}: max |logit - member's own| {gap:.2e}, "
                       f"forward+backward {seconds * 1e3:.2f} ms")
                assert gap <= 1e-3, (name, k, kind, gap)
            takes = "stacked"
            if has_conv(template):  # as run_population(grouped_conv=None) decides: a GPU by this timing
                grouped, seconds = grouped_conv_pays(template, params, x)
                rule = "timed" if c.cuda else "on the CPU per member, untimed"
                takes = f"{'stacked-grouped' if grouped and c.cuda else 'stacked'} ({rule}; timed here: " \
                        f"grouped {seconds[True] * 1e3:.2f} ms, per member {seconds[False] * 1e3:.2f} ms)"
            c.line(f"forward {name} K={k}: fastest {min(figures)[1]}; a population takes {takes}")


def section_update(c: Check) -> None:
    names = [s.name for s in list_strategies() if has_stacked_form(s)]
    for name in names[:2] if c.quick else names:
        lr = {"lr": 1e-3} if name == "adam" else {"lr": 0.02}
        epochs = 2 if c.quick else 5  # well into each schedule, not only its first steps
        cfgs = [c.config("synthetic", name, seed=0, epochs=epochs), c.config("synthetic", name, seed=1, epochs=epochs),
                c.config("synthetic", name, seed=2, epochs=epochs, hparams=lr)]
        stacked, members = run_population(cfgs, stacked=True), run_population(cfgs, stacked=False)
        gap = max(final_gap(a, b) for a, b in zip(stacked, members, strict=True))
        loss = max(abs(a[-1]["train_loss"] - b[-1]["train_loss"]) / max(abs(b[-1]["train_loss"]), 1e-12)
                   for a, b in zip(stacked, members, strict=True))
        c.line(f"update {name}: stacked vs per-member Steppers, max |accuracy gap| {gap:.2e}, "
               f"max relative train-loss gap {loss:.2e}")
        assert gap <= GAP and loss <= 1e-4, (name, gap, loss)


def section_alone(c: Check) -> None:
    for workload in ("synthetic", "cifar10"):
        for strategy in ("adam",) if c.quick else ("adam", "dals", "sam"):
            cfgs = [c.config(workload, strategy, seed=s, epochs=2) for s in (0, 1)]
            together = run_population(cfgs)
            for got, cfg in zip(together, cfgs, strict=True):
                gap = final_gap(got, run_trial(cfg))
                c.line(f"alone {workload} {strategy} seed {cfg['seed']}: population vs run_trial, "
                       f"max |accuracy gap| {gap:.2e}")
                assert gap <= GAP, (workload, strategy, gap)


def section_memory(c: Check) -> str | None:
    if not c.cuda:
        return "CUDA memory statistics only"
    free = torch.cuda.mem_get_info()[0]
    for workload in ("synthetic", "cifar10"):
        peaks = {}
        for k in (1, 16):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            run_population([c.config(workload, "adam", seed=s) for s in range(k)])
            peaks[k] = torch.cuda.max_memory_allocated()
        per_member = max((peaks[16] - peaks[1]) / 15, 1)
        fits = math.floor((0.8 * free - (peaks[1] - per_member)) / per_member)
        c.line(f"memory {workload}: peak {peaks[1] / 2**20:.1f} MiB at K=1, {peaks[16] / 2**20:.1f} MiB at K=16, "
               f"{per_member / 2**20:.2f} MiB per member; 80% of the free {free / 2**30:.1f} GiB holds K={fits} "
               f"(population auto for this workload: {get_workload(workload).population})")


def section_benchmark(c: Check) -> None:
    """The population benchmark on the device, cut off at the run's deadline (what it printed is kept)."""
    runs = ([["--workloads", "synthetic", "--ks", "1,2", "--repeats", "1", "--strategies", "fixed_sgd"]] if c.quick
            else [["--workloads", "synthetic", "--ks", "1,16,64,256", "--repeats", "2",
                   "--strategies", "fixed_sgd,adam,dals,sam"],
                  ["--workloads", "cifar10", "--ks", "1,16,64,256", "--repeats", "1", "--strategies", "fixed_sgd"]])
    for args in runs:
        left = c.deadline - time.monotonic()
        assert left > 10, f"no time left for population.py {' '.join(args)}"
        command = [sys.executable, str(ROOT / "benchmarks" / "population.py"), "--device", c.device, *args]
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=left)
            printed, error = done.stdout, done.stderr if done.returncode else ""
        except subprocess.TimeoutExpired as stopped:
            printed, error = stopped.stdout or "", f"stopped at the deadline after {left:.0f} s"
        for text in (printed.decode() if isinstance(printed, bytes) else printed).splitlines():
            c.line(f"benchmark | {text}")
        assert not error, error[-2000:]


def section_sweep(c: Check) -> None:
    import pandas as pd
    import yaml

    name = "cuda-check-sweep"
    spec = {"name": name, "workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "adam"],
            "budget": {"trials": 2 if c.quick else 4, "epochs": 2 if c.quick else 3},
            "evaluation": {"seeds": 2}, "resources": {"cpu": 1, "gpu": 0.25 if c.cuda else 0, "population": "auto"}}
    path = c.data / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    storage = c.data / "results"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "run", str(path), "--storage", str(storage),
                           "--num-cpus", str(min(os.cpu_count() or 2, 4))], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, (done.returncode, (done.stdout + done.stderr)[-3000:])
    trials = pd.read_parquet(storage / name / "trials.parquet")
    devices = sorted(trials["device"].unique())
    c.line(f"sweep: {len(trials)} runs in {seconds:.0f} s, status {trials['status'].value_counts().to_dict()}, "
           f"devices {devices}, resources.gpu {spec['resources']['gpu']}")
    assert (trials["status"] == "ok").all() and all(d.startswith(c.device) for d in devices), devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="small sizes (the suite's run on the CPU)")
    parser.add_argument("--out", default=str(Path(os.environ.get("OUT", ".")) / "cuda_check.txt"))
    parser.add_argument("--seconds", type=float, default=420, help="the whole run's budget; the benchmark stops at it")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated among {list(SECTIONS)}")
    args = parser.parse_args()
    chosen = args.sections.split(",")
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; allowed: {list(SECTIONS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible (use --device cpu for a dry run)")
    torch.set_num_threads(1)  # as a trial in a sweep has
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    with tempfile.TemporaryDirectory(prefix="lrsweep-cuda-check-") as tmp:
        check = Check(args.device, args.quick, out, Path(tmp), args.seconds)
        for name in chosen:
            start = time.perf_counter()
            try:
                skipped = globals()[f"section_{name}"](check)
                verdict = f"SKIP ({skipped})" if skipped else "ok"
            except Exception as error:  # one failed check must not hide the others' figures
                check.failed.append(name)
                verdict = f"FAIL: {type(error).__name__}: {error}"
                traceback.print_exc()
            check.line(f"== {name}: {verdict} ({time.perf_counter() - start:.1f} s)")
    check.line(f"cuda_check: {len(chosen) - len(check.failed)} of {len(chosen)} sections ok"
               + (f"; failed: {', '.join(check.failed)}" if check.failed else ""))
    raise SystemExit(1 if check.failed else 0)


if __name__ == "__main__":
    main()
