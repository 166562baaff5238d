"""``lrsweep``: run, resume, inspect and submit fair-budget learning-rate sweeps.

Exit status: 0 done; 1 the sweep finished but could not give every pair the same budget
(trials errored beyond retries); 2 bad input (spec, arguments, directory), with nothing written.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from sweeps.spec import SpecError, load_spec

PROJECT_DIR = Path(__file__).resolve().parents[2]
BAD_INPUT = 2
STORAGE_FAILED = 3
"""Exit status of a driver whose sweep storage failed mid-sweep (``sweeps.record.storage.StorageError``)."""


def _fail(message: str) -> int:
    print(f"lrsweep: error: {message}", file=sys.stderr)
    return BAD_INPUT


def _spec_or_fail(path: str, plugins: Sequence[str] | None = None):
    try:
        return load_spec(path, tuple(plugins or ())), None
    except SpecError as err:
        return None, _fail(str(err))


def _drive(start: Callable[[], int]) -> int:
    """Run a driver (run, resume, extend, reproduce): a refusal is bad input (2, nothing written); a
    storage that fails is ``STORAGE_FAILED`` (``main``)."""
    from sweeps.record.storage import SweepError

    try:
        return start()
    except (SpecError, SweepError) as err:
        return _fail(str(err))


def cmd_run(args: argparse.Namespace) -> int:
    spec, status = _spec_or_fail(args.spec, args.plugin)
    if spec is None:
        return status
    if args.track:
        from sweeps.observers.tracking import with_tracking

        try:
            spec = with_tracking(spec, args.track)
        except SpecError as err:
            return _fail(str(err))
    from sweeps.commands.launch import run_sweep  # Ray and torch: only for a spec that can run

    return _drive(lambda: run_sweep(spec, storage=args.storage, address=args.address, num_cpus=args.num_cpus))


def cmd_resume(args: argparse.Namespace) -> int:
    from sweeps.commands.launch import resume_sweep

    return _drive(lambda: resume_sweep(args.dir, address=args.address, num_cpus=args.num_cpus))


def cmd_extend(args: argparse.Namespace) -> int:
    from sweeps.commands.extend import extend_sweep

    names = (lambda text: [x.strip() for x in (text or "").split(",") if x.strip()])
    return _drive(lambda: extend_sweep(args.dir, strategies=names(args.strategies), workloads=names(args.workloads),
                                       seeds=args.seeds, spec_path=args.spec, plugins=args.plugin or (),
                                       address=args.address, num_cpus=args.num_cpus))


def cmd_status(args: argparse.Namespace) -> int:
    from sweeps.observers.progress import status
    from sweeps.record.storage import SweepError

    try:
        if args.watch:
            from sweeps.observers.watch import watch

            return watch(args.dir, args.interval)
        return status(args.dir)
    except SweepError as err:
        return _fail(str(err))


def cmd_track(args: argparse.Namespace) -> int:
    from sweeps.observers.tracking import track
    from sweeps.record.storage import SweepError

    try:
        return track(args.dir, args.track or ())
    except (SweepError, SpecError) as err:
        return _fail(str(err))


def job_request(spec_path: Path, storage: str | None, spec_plugins: Sequence = (),
                cli_plugins: Sequence = ()) -> tuple[str, dict]:
    """The Ray Job entrypoint and runtime_env that run ``spec_path`` (inside the project) on a cluster.

    ``spec_plugins`` / ``cli_plugins``: the ``sweeps.spec.plugins.Plugin`` entries of the spec and of
    ``--plugin``. Their code goes with the job as ``py_modules`` (so a plugin file may lie outside
    the project); the job's driver and every worker import them by module name.
    """
    from sweeps.spec import plugins

    # `python -m` works on a head node where the lrsweep script is not installed: the job runs in
    # the uploaded working_dir, which puts the packages on the path.
    entrypoint = f"python -m sweeps.commands.cli run {spec_path.relative_to(PROJECT_DIR)} --address auto"
    for plugin in cli_plugins:
        entrypoint += f" --plugin {shlex.quote(plugin.module)}"
    if storage:
        entrypoint += f" --storage {shlex.quote(storage)}"
    runtime_env = {
        "working_dir": str(PROJECT_DIR),
        "excludes": [".venv", ".git", "results", "**/__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache"],
        **plugins.runtime_env([*spec_plugins, *cli_plugins]),
    }
    return entrypoint, runtime_env


def cmd_submit(args: argparse.Namespace) -> int:
    """Send ``lrsweep run SPEC --address auto`` to a cluster as a Ray Job, the project as working_dir."""
    spec, status = _spec_or_fail(args.spec, args.plugin)
    if spec is None:
        return status
    spec_path = Path(args.spec).resolve()
    if not spec_path.is_relative_to(PROJECT_DIR):
        return _fail(f"spec {args.spec} must lie inside the project directory {PROJECT_DIR}, which is "
                     "uploaded as the job's working_dir")
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    from sweeps.spec.plugins import as_packages, resolve

    cli_plugins = [resolve(entry) for entry in args.plugin or ()]
    spec_plugins = [p for p in spec.plugins if p not in cli_plugins]
    with tempfile.TemporaryDirectory(prefix="lrsweep-plugins-") as staging:  # uploaded by submit_job
        entrypoint, runtime_env = job_request(spec_path, args.storage, as_packages(spec_plugins, staging),
                                              as_packages(cli_plugins, staging))
        try:
            # The client reads RAY_AUTH_MODE / RAY_AUTH_TOKEN(_PATH) from the environment itself.
            client = JobSubmissionClient(args.address)
            job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env, submission_id=args.job_id,
                                       metadata={"sweep": spec.name, "spec_hash": spec.hash})
        except AuthenticationError as err:
            # Ray's message runs to a paragraph of advice; its first line names the cause.
            cause = str(err).strip().splitlines()[0]
            return _fail(f"could not submit to {args.address}: {cause} (export RAY_AUTH_MODE=token and the "
                         "cluster's token as RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)")
        except (ConnectionError, RuntimeError, ValueError) as err:
            return _fail(f"could not submit to {args.address}: {err}")
    print(f"submitted sweep {spec.name} (spec hash {spec.hash}) as Ray job {job_id}")
    print(f"follow its log:  ray job logs --address {args.address} --follow {job_id}")
    print(f"job status:      ray job status --address {args.address} {job_id}")
    if os.environ.get("RAY_AUTH_MODE") != "token":
        print("(on a token-authenticated cluster, export RAY_AUTH_MODE=token for the ray job commands)")
    return 0


def _import_plugins_or_fail(entries: Sequence[str] | None) -> int | None:
    """Import ``--plugin`` entries (and the installed entry points) for a listing command."""
    from sweeps.spec.plugins import PluginError, import_plugins, resolve

    try:
        import_plugins([resolve(entry) for entry in entries or ()])
    except PluginError as err:
        return _fail(f"--plugin: {err}")
    return None


def cmd_strategies(args: argparse.Namespace) -> int:
    from strategies import list_strategies
    from sweeps.spec import catalog

    if (failed := _import_plugins_or_fail(args.plugin)) is not None:
        return failed

    if args.markdown:
        print(catalog.strategy_markdown(args.workload))
        return 0
    for s in list_strategies():
        space = catalog.default_space(args.workload, {}, s.name)
        canonical = catalog.resolved_canonical(args.workload, {}, s.name)
        print(f"{s.name:20s} gen {s.generation:6s} {s.family:5s} {s.description}")
        for name, r in space.items():
            print(f"    {name:16s} canonical {canonical[name]:<10.4g} searched [{r.low:.4g}, {r.high:.4g}] {r.scale}")
    return 0


def cmd_workloads(args: argparse.Namespace) -> int:
    from trainables import list_workloads

    if (failed := _import_plugins_or_fail(args.plugin)) is not None:
        return failed

    for w in list_workloads():
        print(f"{w.name:12s} {w.regime:8s} epochs {w.default_epochs:<3d} batch {w.batch_size:<4d} "
              f"population {w.population:<3d} {w.description}")
        for o in w.options:
            print(f"    {o.name:16s} default {o.default!r:<12} {o.describe()}: {o.help}")
    return 0


def _option_pairs(entries: Sequence[str] | None) -> dict:
    """``KEY=VALUE`` strings as a dict, each value read as a YAML scalar (``n_train=512`` is an int)."""
    import yaml

    options = {}
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {entry!r}; allowed: KEY=VALUE, e.g. n_train=512")
        options[key] = yaml.safe_load(value)
    return options


def cmd_lr_range(args: argparse.Namespace) -> int:
    """The LR range test of one (workload, strategy): curve, plot, suggested range, spec lines."""
    from strategies import StrategyError, get_strategy, list_strategies
    from trainables import WorkloadError, get_workload, list_workloads
    from trainables import lr_range as lrr

    if (failed := _import_plugins_or_fail(args.plugin)) is not None:
        return failed
    try:
        lrr.check_ramp(args.min_lr, args.max_lr, args.steps)
        options = _option_pairs(args.option)
    except ValueError as err:
        return _fail(str(err))
    known = [w.name for w in list_workloads()]
    if args.workload not in known:
        return _fail(f"--workload {args.workload!r}: unknown workload; allowed: {', '.join(known)}")
    workload = get_workload(args.workload)
    try:
        workload.validate_options(options)
    except WorkloadError as err:
        return _fail(f"--option: {err}")
    try:
        strategy = get_strategy(args.strategy)
    except StrategyError:
        names = ", ".join(s.name for s in list_strategies())
        return _fail(f"--strategy {args.strategy!r}: unknown strategy; allowed: {names} (or NAME@paper_code)")
    try:
        test = lrr.range_test_workload(workload.name, strategy.name, min_lr=args.min_lr, max_lr=args.max_lr,
                                       steps=args.steps, options=options, seed=args.seed, device=args.device,
                                       data_dir=args.data_dir)
    except (WorkloadError, StrategyError) as err:
        return _fail(str(err))
    curve, canonical_lr = test.curve, test.hparams["lr"]
    ceiling = next(h.high for h in strategy.hparams if h.name == "lr")
    settings = ", ".join(f"{k} {v:g}" for k, v in test.hparams.items())
    print(f"lr range test: {workload.name} / {strategy.name} on {test.device}, from the canonical settings "
          f"({settings})")
    print(f"  ramp: lr of the top layer group from {args.min_lr:g} to {args.max_lr:g}, geometric over "
          f"{args.steps} steps; every group keeps its ratio to it")
    print(f"  smoothed loss: EMA beta {curve.beta:g}, bias-corrected; stop when it exceeds "
          f"{curve.div_factor:g}x its best or is not finite")
    best = min(curve.smoothed[:-1] if curve.diverged else curve.smoothed, default=float("nan"))
    if curve.diverged:
        print(f"  diverged at step {len(curve.lrs)}/{args.steps}, lr {curve.lrs[-1]:.3g}: smoothed loss "
              f"{curve.smoothed[-1]:.3g} against a best of {best:.3g}")
    else:
        print(f"  no divergence in {args.steps} steps (best smoothed loss {best:.3g})")
    try:
        suggestion = lrr.suggest(curve, canonical_lr, ceiling)
    except lrr.RangeTestError as err:
        lrr.plot(curve, None, args.out, f"LR range test: {workload.name} / {strategy.name}")
        print(f"  plot: {args.out}")
        return _fail(str(err))
    steep = curve.lrs.index(suggestion.steepest_lr)
    print(f"  steepest descent of the smoothed loss: lr {suggestion.steepest_lr:.3g} (step {steep + 1}); "
          f"smallest smoothed loss: lr {suggestion.minimum_lr:.3g}")
    print(f"  suggested lr range: [{suggestion.low:.3g}, {suggestion.high:.3g}] (low: the steepest descent; "
          f"high: the smallest loss's lr, at most {lrr.HIGH_FRACTION:.3g} x the divergence lr)")
    for note in suggestion.notes:
        print(f"  note: {note}")
    path = lrr.plot(curve, suggestion, args.out, f"LR range test: {workload.name} / {strategy.name}")
    print(f"  plot: {path}")
    print(f"paste into a sweep spec (canonical lr as on {workload.name}):")
    print("\n".join(lrr.search_space_lines(strategy.name, suggestion)))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    spec, status = _spec_or_fail(args.spec, args.plugin)
    if spec is None:
        return status
    from sweeps.commands import estimate as est

    slots = est.slots_of(spec, args.num_cpus, args.gpus)
    pilot = None
    if args.from_dir:
        from lrresults.store import exists, normalise

        if not exists("trials", normalise(args.from_dir)):
            return _fail(f"--from {args.from_dir}: no trials table there (a finished lrsweep sweep directory)")
        costs, pilot = est.from_sweep(normalise(args.from_dir))
        source = f"costs measured by the sweep in {args.from_dir}"
    else:
        print(f"calibrating: one epoch of a population of each of {len(spec.pairs())} pairs on this machine "
              "(--from DIR reads an earlier sweep's times instead)")
        try:
            costs = est.calibrate(spec, print)
        except Exception as err:  # noqa: BLE001 - a workload whose data is not here cannot be timed
            return _fail(f"calibration failed ({type(err).__name__}: {err}); pass --from DIR, an earlier sweep "
                         "of these workloads, to estimate from its recorded times")
        source = "costs calibrated on this machine"
    studies = est.study_pilot(normalise(args.from_dir)) if args.from_dir else None
    try:
        plan = est.estimate(spec, costs, slots, pilot, studies)
    except KeyError as err:
        return _fail(f"--from {args.from_dir}: {err.args[0]}")
    for line in est.describe(spec, plan, source):
        print(line)
    for line in est.study_guarantee_lines(spec, studies):
        print(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Delegate to the reports package (`reports.cli.cli_report`), whose heavy imports load only now."""
    from reports.cli import cli_report

    return int(cli_report(args) or 0)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from lrresults.store import is_uri
    from sweeps.commands.reproduce import load_repro_spec, run_reproduction

    try:
        repro = load_repro_spec(args.spec)
    except SpecError as err:
        return _fail(str(err))
    missing = [d for d in args.fair or () if not is_uri(d) and not os.path.exists(os.path.join(d, "trials.parquet"))]
    if missing:
        return _fail(f"--fair {missing[0]}: no trials.parquet; allowed: a sweep directory written by lrsweep run")
    return _drive(lambda: run_reproduction(repro, storage=args.storage, address=args.address,
                                           num_cpus=args.num_cpus, fair=args.fair or ()))


def cmd_reproduce_report(args: argparse.Namespace) -> int:
    from lrresults.store import is_uri
    from reports.reproduce import build_reproduction_report

    for directory in [*args.dirs, *(args.fair or [])]:
        if not os.path.exists(os.path.join(directory, "trials.parquet")) and not is_uri(directory):
            return _fail(f"{directory}: no trials.parquet; allowed: a directory written by lrsweep reproduce "
                         "(DIR) or lrsweep run (--fair)")
    md, page = build_reproduction_report(args.dirs, args.fair or (), args.out)
    print(f"report: {md} and {page}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrsweep",
        description="Fair-budget learning-rate strategy sweeps on Ray Tune: tune every (workload, strategy) "
                    "pair with the same budget, re-evaluate the best configs with seeds, write Parquet.",
        epilog="exit status: 0 done, 1 unequal budget (trials errored beyond retries), 2 bad input, 3 the "
               "sweep's storage failed mid-sweep (resume once it is back)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def ray_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--address", help="Ray cluster address (e.g. auto or HOST:6379); default: start an "
                                         "embedded local Ray")
        p.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")

    def plugin_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--plugin", action="append", metavar="MODULE_OR_FILE",
                       help="import this module, .py file or package directory first (it may register "
                            "workloads and strategies); repeatable; it travels with the job to every worker")

    def track_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--track", action="append", metavar="NAME[={OPTIONS}]",
                       help="also log to this tracker (tensorboard, mlflow, wandb), with options as YAML, e.g. "
                            "--track 'mlflow={tracking_uri: http://127.0.0.1:5000}'; repeatable; as the spec's "
                            "tracking section (README: Watching a sweep)")

    p = sub.add_parser("run", help="run a sweep from a spec file", description="Run a sweep: tune stage, "
                       "seed stage, Parquet tables under <storage>/<name>/.")
    p.add_argument("spec", help="sweep spec YAML, e.g. sweeps/quick.yaml")
    p.add_argument("--storage", help="results storage (local path or URI such as s3://bucket/x); "
                                     "overrides the spec's storage")
    plugin_option(p)
    track_option(p)
    ray_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plan", help="the runs a spec will train and an estimate of its wall time",
                       description="Print the runs SPEC trains and an estimate of its wall time on the given CPUs "
                                   "(or GPUs), from a short calibration on this machine or an earlier sweep's "
                                   "recorded times (--from); for the selection design, the least, the most and "
                                   "(with --from) the expected seed runs.")
    p.add_argument("spec", help="sweep spec YAML, e.g. sweeps/quick.yaml")
    p.add_argument("--num-cpus", type=int, help="CPUs the sweep will have (default: this machine's)")
    p.add_argument("--gpus", type=float, help="GPUs the sweep will have (with resources.gpu > 0)")
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="an earlier sweep directory: its times replace the calibration and its seed runs are "
                        "the pilot for the expected seed runs of a selection design")
    plugin_option(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("resume", help="finish an interrupted sweep", description="Finish an interrupted "
                       "sweep; finished trials are not run again.")
    p.add_argument("dir", help="sweep directory, <storage>/<name>")
    ray_options(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("extend", help="add strategies, workloads or seeds to a sweep under its protocol",
                       description="Add to a finished or interrupted sweep under exactly its protocol and train only "
                                   "what is new; a change of protocol is refused (exit 2) with nothing written. "
                                   "A kill during an extension is finished by `lrsweep resume DIR`.")
    p.add_argument("dir", help="sweep directory, <storage>/<name>")
    p.add_argument("--strategies", metavar="A,B", help="strategies to add (with --plugin for your own)")
    p.add_argument("--workloads", metavar="W,V", help="workloads to add, with their default options")
    p.add_argument("--seeds", type=int, metavar="N", help="a fixed design's seeds, more than the sweep's")
    p.add_argument("--spec", help="a spec that differs from the sweep's own only by added strategies and workloads")
    plugin_option(p)
    ray_options(p)
    p.set_defaults(func=cmd_extend)

    p = sub.add_parser("status", help="show a sweep's progress", description="Trials done and best "
                       "scores per pair (no Ray needed).")
    p.add_argument("dir", help="sweep directory, <storage>/<name>")
    p.add_argument("--watch", action="store_true", help="refresh until the sweep ends: the per-pair table, the "
                   "trials in flight and the provisional verdict (plain lines when stdout is not a terminal)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("track", help="log a sweep's runs and report to its trackers",
                       description="Log a sweep's finished runs (and its report, once the tables are written) "
                                   "to the trackers of its spec and of --track, skipping runs already logged.")
    p.add_argument("dir", help="sweep directory, <storage>/<name>")
    track_option(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("submit", help="run a sweep on a Ray cluster as a Ray Job",
                       description="Submit `lrsweep run SPEC --address auto` as a Ray Job with this project "
                                   "as the working_dir. Honours RAY_AUTH_MODE=token.")
    p.add_argument("spec", help="sweep spec YAML inside the project directory")
    p.add_argument("--address", required=True, help="Ray dashboard address, e.g. http://HEAD:8265")
    p.add_argument("--storage", help="shared results storage (URI or NFS path) for the job")
    p.add_argument("--job-id", help="submission id (default: generated by Ray)")
    plugin_option(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("strategies", help="list strategies, canonical settings and search spaces",
                       description="Strategies with canonical settings and searched ranges.")
    p.add_argument("--markdown", action="store_true", help="print the search-space table as Markdown")
    p.add_argument("--workload", default="synthetic", help="workload whose regime sets the canonical values")
    plugin_option(p)
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser("workloads", help="list workloads and their options", description="Workloads, "
                       "regimes, default epochs and options.")
    plugin_option(p)
    p.set_defaults(func=cmd_workloads)

    p = sub.add_parser("reproduce", help="run a benchmark as the paper's code ran it (no tuning)",
                       description="Run a reproduction spec (e.g. sweeps/reproduce-synthetic.yaml): every "
                                   "strategy once per seed (42, then more) with the paper's protocol, written "
                                   "as sweep Parquet tables, then the reproduction report.")
    p.add_argument("spec", help="reproduction spec YAML, e.g. sweeps/reproduce-synthetic.yaml")
    p.add_argument("--storage", help="results storage; overrides the spec's storage")
    p.add_argument("--fair", nargs="+", metavar="DIR", help="fair sweep directories whose tuned verdicts the "
                                                            "report sets beside the reproduction")
    ray_options(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("reproduce-report", help="rebuild a reproduction report from Parquet",
                       description="reproduction.md/.html from lrsweep reproduce directories (and fair sweeps).")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="reproduction directory, <storage>/<name>")
    p.add_argument("--fair", nargs="+", metavar="DIR", help="fair sweep directories (lrsweep run)")
    p.add_argument("--out", help="output folder (default: DIR/report)")
    p.set_defaults(func=cmd_reproduce_report)

    from trainables.lr_range import MAX_LR, MIN_LR, STEPS  # plain constants: the module imports no torch

    p = sub.add_parser("lr-range", help="LR range test: loss against a growing LR, a suggested lr range",
                       description="Smith's LR range test (2017, section 3.3) for one workload and strategy: "
                                   "train from the canonical settings with the LR growing geometrically, "
                                   "stop at divergence, plot the smoothed loss, print a suggested lr range "
                                   "and the search_space lines of a sweep spec.")
    p.add_argument("--workload", default="synthetic", help="workload name (default: synthetic)")
    p.add_argument("--strategy", required=True, help="strategy name, e.g. fixed_sgd")
    p.add_argument("--min-lr", type=float, default=MIN_LR, help=f"first LR of the ramp (default {MIN_LR:g})")
    p.add_argument("--max-lr", type=float, default=MAX_LR, help=f"last LR of the ramp (default {MAX_LR:g})")
    p.add_argument("--steps", type=int, default=STEPS, help=f"steps of the ramp, >= 2 (default {STEPS})")
    p.add_argument("--out", default="lr_range.png", help="where to write the plot (PNG; default lr_range.png)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a workload option; repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch order (default 0)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: auto")
    p.add_argument("--data-dir", help="where datasets such as CIFAR-10 live")
    plugin_option(p)
    p.set_defaults(func=cmd_lr_range)

    from reports.cli import DESCRIPTION  # argparse only, no pandas
    from reports.cli import add_arguments as add_report_arguments

    p = sub.add_parser("report", help="write a sweep's report (reports package)", description=DESCRIPTION)
    add_report_arguments(p)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lrsweep``; raises SystemExit with the exit status."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except BrokenPipeError:
        # The reader went away (`lrsweep status DIR | head`): stop quietly, as Unix tools do. Later
        # writes to the closed stdout (Python flushes it at exit) go to /dev/null instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe
    except (RuntimeError, OSError) as err:
        code = _storage_failed(err)
        if code is None:
            raise
    raise SystemExit(code)


def _storage_failed(err: RuntimeError | OSError) -> int | None:
    """Say what to do and return ``STORAGE_FAILED`` for a sweep stopped by its storage (``StorageError``)
    or any command whose storage cannot be read or written; None for any other error."""
    from sweeps.record.storage import StorageError, storage_fault

    if isinstance(err, StorageError):
        print(f"lrsweep: storage error: {err}", file=sys.stderr)
    elif isinstance(err, OSError) and storage_fault(err) is not None:
        print(f"lrsweep: storage error: {type(err).__name__}: {err}. Every file is written whole or not at all, "
              "so what was there is intact; run the command again once the storage is back.", file=sys.stderr)
    else:
        return None
    return STORAGE_FAILED


if __name__ == "__main__":
    main()
