"""The built-in workloads as declarations: names, regimes, options, defaults, overrides.

Torch-free: a sweep spec is validated against these. Data, models and layer groups live in
``synthetic.py``, ``cifar10.py`` and ``text.py``, imported when a trial first loads data or builds
a model (``trainables.workload.lazy``).
"""

from __future__ import annotations

from typing import Any

from trainables.workload import Option, Workload, WorkloadError, get_workload, lazy, list_workloads, register_workload
from vocab.contracts import FINETUNE, SCRATCH

SYN, CIFAR, TEXT = "trainables.workloads.synthetic", "trainables.workloads.cifar10", "trainables.workloads.text"

SYNTHETIC = register_workload(
    Workload(
        name="synthetic",
        description="Gaussian 10-class task (8000 x 64, seed 42), MLP 64-128-128-128-10, from scratch",
        regime=SCRATCH,
        default_epochs=80,
        batch_size=64,
        eval_batch_size=8000,  # every test row in one batch (synthetic.N_ROWS)
        load_data=lazy(SYN, "load_data"),
        build_model=lazy(SYN, "build_model"),
        layer_groups=lazy(SYN, "layer_groups"),
        paper_rng_prelude=lazy(SYN, "paper_rng_prelude"),
        holdout="val_fraction",
        # A prefix of the training rows, for quick runs and tests only; None is the paper's data.
        train_limit="n_train",
        # With the stacked updates per-run throughput grows to K = 16 (2.3-2.6x, 2.1-2.3x at K = 8;
        # BENCHMARKS.md) and not beyond. A 16-trial TPE budget loses nothing by being one batch: its
        # first 10 trials are random start-up trials, and on 2 CPUs two batches of 8 started together.
        population=16,
        options=(
            Option(
                "val_fraction", 0.2, float, "share of the 6400 training rows held out in the tune stage",
                check=lambda v: 0.0 < v < 1.0, allowed="0 < value < 1",
            ),
            Option(
                "n_train", None, int, "train on only the first n training rows (quick runs; None = all)",
                check=lambda v: v >= 1, allowed=">= 1", nullable=True,
            ),
        ),
    )
)

CIFAR10 = register_workload(
    Workload(
        name="cifar10",
        description="CIFAR-10 from a data dir, ConvNet 3 x conv + FC 2048-256-10, from scratch",
        regime=SCRATCH,
        default_epochs=50,
        batch_size=128,
        eval_batch_size=1000,
        load_data=lazy(CIFAR, "load_data"),
        build_model=lazy(CIFAR, "build_model"),
        layer_groups=lazy(CIFAR, "layer_groups"),
        family_overrides={"sgd": {"weight_decay": 5e-4}},
        holdout="val_size",
        options=(
            Option("download", False, bool, "download the archive into data_dir when it is missing"),
            Option("verify_checksums", True, bool, "check the official files' MD5s (false for other copies)"),
            Option("augment", True, bool, "random crop and flip of training batches (false: none, as the "
                                          "paper's code trains)"),
            Option(
                "val_size", 5000, int, "training images held out for validation in the tune stage",
                check=lambda v: v >= 1, allowed=">= 1",
            ),
        ),
    )
)


# ----- text classification (text.py) ---------------------------------------------------------------

DEFAULT_MODEL = "distilbert-base-uncased"


def _regime(options: dict) -> str:
    return FINETUNE if options["pretrained"] else SCRATCH


def _is_split_files(value: Any) -> bool:
    return bool(value) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def text_workload(
    name: str,
    description: str,
    *,
    dataset: str,
    text_column: str,
    label_column: str,
    test_split: str = "test",
    dataset_config: str | None = None,
    text_pair_column: str | None = None,
    max_length: int = 128,
    epochs: int = 5,
    batch_size: int = 32,
) -> Workload:
    """A text-classification ``Workload`` whose option defaults are the given task facts."""
    positive = {"check": lambda v: v >= 1, "allowed": ">= 1"}
    options = (
        Option("model", DEFAULT_MODEL, str, "Hugging Face hub name or local directory of model and tokenizer"),
        Option("pretrained", True, bool, "load pretrained weights (fine-tune); false: random init (scratch)"),
        Option("dataset", dataset, str, "hub name, local folder or save_to_disk folder"),
        Option("dataset_config", dataset_config, str, "hub configuration name (GLUE task)", nullable=True),
        Option(
            "data_files", None, dict, "{split: path} of local CSV/TSV/JSON lines/Parquet/Arrow files",
            check=_is_split_files, allowed="a non-empty dict of split name to path", nullable=True,
        ),
        Option("text_column", text_column, str, "column holding the (first) text"),
        Option("text_pair_column", text_pair_column, str, "column holding the second text of a pair", nullable=True),
        Option("label_column", label_column, str, "column holding the label"),
        Option("train_split", "train", str, "split to train on"),
        Option("test_split", test_split, str, "split scored in the seed stage"),
        Option("val_split", "validation", str, "split scored in the tune stage when present and not the test split"),
        Option(
            "val_fraction", 0.1, float, "share of training rows held out when there is no validation split",
            check=lambda v: 0.0 < v < 1.0, allowed="0 < value < 1",
        ),
        Option(
            "max_length", max_length, int, "maximum tokens per example (truncation)",
            check=lambda v: v >= 8, allowed=">= 8",
        ),
        Option("max_train_samples", None, int, "train on the first n rows only", nullable=True, **positive),
        Option("max_eval_samples", None, int, "score the first n rows only", nullable=True, **positive),
    )
    return Workload(
        name=name,
        description=description,
        regime=FINETUNE,
        regime_of=_regime,
        default_epochs=epochs,
        batch_size=batch_size,
        eval_batch_size=128,
        load_data=lazy(TEXT, "load_data"),
        build_model=lazy(TEXT, "build_model"),
        layer_groups=lazy(TEXT, "layer_groups"),
        options=options,
        mixed_precision=True,
        buffers=True,  # the transformers models' position ids: members of a population run alone
        holdout="val_fraction",
        train_limit="max_train_samples",
        eval_limit="max_eval_samples",
    )


SPEC_TASKS: set[str] = set()
"""Names of the text tasks sweep specs defined in this process (``spec_task``)."""


def spec_task(name: str) -> Workload:
    """The text workload called ``name`` that a sweep spec defines with no plugin
    (``workloads: [{text: {name: rotten_tomatoes, dataset: ./rt, text_column: ..., label_column: ...}}]``).

    Its facts are all options (``dataset`` or ``data_files``, the columns, the splits), so the name is
    all a Ray worker needs to register it; results carry that name. A name registered otherwise
    (a built-in or a plugin's workload) is refused.
    """
    if name in SPEC_TASKS:
        return get_workload(name)
    if name in {w.name for w in list_workloads()}:
        raise WorkloadError(f"{name!r} is already a registered workload; a text task defined in the spec needs "
                            "a name of its own")
    SPEC_TASKS.add(name)
    return register_workload(text_workload(
        name, f"text classification task {name!r} defined in the sweep spec", dataset="",
        text_column="text", label_column="label", epochs=3,
    ))


RTE = register_workload(
    text_workload(
        "rte", "GLUE RTE entailment (sentence pairs), DistilBERT fine-tune",
        dataset="nyu-mll/glue", dataset_config="rte", text_column="sentence1", text_pair_column="sentence2",
        label_column="label", test_split="validation", max_length=128, epochs=5,
    )
)
TREC6 = register_workload(
    text_workload(
        "trec6", "TREC question classification, 6 coarse labels, DistilBERT fine-tune",
        dataset="CogComp/trec", text_column="text", label_column="coarse_label", max_length=64, epochs=5,
    )
)
IMDB = register_workload(
    text_workload(
        "imdb", "IMDb binary sentiment, DistilBERT fine-tune",
        dataset="stanfordnlp/imdb", text_column="text", label_column="label", max_length=256, epochs=3,
    )
)
