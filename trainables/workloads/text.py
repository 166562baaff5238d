"""Text classification workloads (RTE, TREC-6, IMDb) on any Hugging Face sequence classifier.

One loader and one model builder serve the three tasks; ``text_workload`` turns per-task defaults
(hub name, columns, which split is the test split, maximum length) into a registered
``Workload``. A new text task is one ``register_workload(text_workload(...))`` call.

Data: a hub name (``datasets.load_dataset(name, config)``), local files (``data_files``, a
``{split: path}`` dict; CSV, TSV, JSON lines, Parquet or Arrow, picked by extension), a folder of
``train.* / validation.* / test.*`` files, or a folder written by ``save_to_disk``. Relative local
paths are looked up under ``config["data_dir"]`` first. Labels may be ints, a ``ClassLabel`` or
strings (mapped to ints in sorted order).

Splits: the seed stage scores ``test_split``. The tune stage scores the dataset's own
``val_split`` when it exists and is not the test split (``Data.validation``); otherwise lrsweep
holds out ``val_fraction`` of the training rows with its fixed permutation. GLUE's RTE test labels are hidden, so RTE's
``test_split`` is "validation" and its tuning rows are carved from train, as for TREC and IMDb.

Tokenisation happens once, into one ``[N, longest]`` tensor per model input; a batch is cut to its
own longest row (dynamic padding as a slice, no per-example Python). The model comes from the
``transformers`` Auto classes, a hub name or a local directory; ``pretrained: false`` builds the same
architecture with random weights and trains it in the scratch regime.

Layer groups: the embeddings, each transformer block, then the head (everything else: DistilBERT's
pre-classifier and classifier, BERT's pooler and classifier).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainables.logs import route_library_logs
from trainables.workload import Data, Split, WorkloadError

# Declared torch-free in ``builtin`` (a spec is validated against them); importable from here as well.
from trainables.workloads.builtin import SPEC_TASKS, spec_task, text_workload  # noqa: F401

FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".arrow": "arrow"}
SPLIT_NAMES = ("train", "validation", "test")
# Where each architecture keeps its list of transformer blocks, relative to ``model.base_model``.
# BERT, RoBERTa, ELECTRA, DeBERTa and most other BERT-family encoders use "encoder.layer".
BLOCK_PATHS = {"distilbert": "transformer.layer"}
DEFAULT_BLOCK_PATH = "encoder.layer"


class TokenSplit(Split):
    """Tokenised rows padded to the split's longest row; a batch is cut to its own longest row."""

    def __init__(
        self, features: Mapping[str, torch.Tensor], lengths: torch.Tensor, labels: torch.Tensor, left: bool
    ) -> None:
        self.features, self.lengths, self.labels, self.left = dict(features), lengths, labels, left

    def to(self, device: torch.device) -> TokenSplit:
        features = {k: v.to(device) for k, v in self.features.items()}
        return TokenSplit(features, self.lengths.to(device), self.labels.to(device), self.left)

    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator) -> dict[str, torch.Tensor]:
        width = int(self.lengths[index].max())
        cut = slice(-width, None) if self.left else slice(0, width)
        return {k: v[index][:, cut] for k, v in self.features.items()}

    def subset(self, rows: torch.Tensor) -> TokenSplit:
        # Rows stay padded to the whole split's longest; a batch is cut to its own longest anyway.
        features = {k: v[rows] for k, v in self.features.items()}
        return TokenSplit(features, self.lengths[rows], self.labels[rows], self.left)


class SequenceClassifier(nn.Module):
    """A Hugging Face ``...ForSequenceClassification`` model called as ``model(inputs) -> logits``."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.hf(**inputs).logits


def _local(path: str, data_dir: str | None) -> Path | None:
    """``path`` as an existing local path (tried under ``data_dir`` first when relative), else None."""
    candidates = [Path(path).expanduser()]
    if data_dir is not None and not candidates[0].is_absolute():
        candidates.insert(0, Path(data_dir).expanduser() / path)
    return next((p for p in candidates if p.exists()), None)


def _load_files(files: Mapping[str, Path]):
    import datasets

    suffixes = {p.suffix.lower() for p in files.values()}
    formats = {FORMATS.get(s) for s in suffixes}
    if None in formats or len(formats) != 1:
        raise WorkloadError(
            f"data_files must all have one of the extensions {', '.join(FORMATS)}; got {sorted(suffixes)}"
        )
    kwargs = {"delimiter": "\t"} if suffixes == {".tsv"} else {}
    return datasets.load_dataset(formats.pop(), data_files={k: str(v) for k, v in files.items()}, **kwargs)


def load_dataset_dict(options: dict, data_dir: str | None):
    """The task's ``DatasetDict``, from local files, a saved dataset, a local folder or the hub."""
    import datasets

    if options["data_files"] is not None:
        files = {}
        for split, path in options["data_files"].items():
            local = _local(path, data_dir)
            if local is None:
                raise WorkloadError(f"data_files[{split!r}] = {path!r} does not exist")
            files[split] = local
        return _load_files(files)
    local = _local(options["dataset"], data_dir)
    if local is not None:
        if (local / "dataset_dict.json").exists():
            return datasets.load_from_disk(str(local))
        files = {p.stem: p for p in sorted(local.iterdir()) if p.stem in SPLIT_NAMES and p.suffix in FORMATS}
        if not files:
            raise WorkloadError(
                f"dataset folder {local} holds neither a save_to_disk DatasetDict nor files named "
                f"{'/'.join(SPLIT_NAMES)} with an extension in {', '.join(FORMATS)}"
            )
        return _load_files(files)
    try:
        return datasets.load_dataset(options["dataset"], options["dataset_config"])
    except Exception as err:  # no network, unknown name, ...: say what was asked and how to go offline
        raise WorkloadError(
            f"could not load dataset {options['dataset']!r} (config {options['dataset_config']!r}) from the "
            f"Hugging Face hub: {err}. Offline, pass a local folder as 'dataset' or files as 'data_files'"
        ) from err


def _label_mapping(column_type: Any, values: list) -> tuple[dict | None, int]:
    """(mapping from raw label to int or None when labels are ints already, number of classes)."""
    names = getattr(column_type, "names", None)  # datasets.ClassLabel
    if names is not None:
        return None, len(names)
    if all(isinstance(v, str) for v in values):
        classes = sorted(set(values))
        return {c: i for i, c in enumerate(classes)}, len(classes)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise WorkloadError(f"labels must be ints, strings or a ClassLabel; got values like {values[:3]}")
    return None, max(values) + 1


def load_tokenizer(options: dict):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(options["model"])
    except OSError as err:
        raise WorkloadError(
            f"could not load the tokenizer of model {options['model']!r}: {err}. Offline, pass a local "
            "directory holding a save_pretrained tokenizer and config as 'model'"
        ) from err
    if tokenizer.pad_token is None:
        raise WorkloadError(f"the tokenizer of {options['model']!r} has no pad token; dynamic padding needs one")
    return tokenizer


def load_data(options: dict, data_dir: str | None) -> Data:
    """Tokenised train and test splits, and the dataset's own validation split if it has one."""
    import datasets  # noqa: F401  (imported here so that its chatter is routed before it loads anything)
    import transformers  # noqa: F401

    route_library_logs()
    dd = load_dataset_dict(options, data_dir)
    train_name, test_name, val_name = options["train_split"], options["test_split"], options["val_split"]
    for name in (train_name, test_name):
        if name not in dd:
            raise WorkloadError(f"dataset has no split {name!r}; its splits are {sorted(dd)}")
    train = dd[train_name]
    columns = [options["text_column"], options["text_pair_column"], options["label_column"]]
    for column in filter(None, columns):
        if column not in train.column_names:
            raise WorkloadError(f"dataset has no column {column!r}; its columns are {train.column_names}")

    label = options["label_column"]
    raw_labels = list(dd[train_name][label]) + list(dd[test_name][label])
    mapping, num_classes = _label_mapping(train.features[label], raw_labels)
    tokenizer = load_tokenizer(options)

    def encode(ds, name: str) -> TokenSplit:
        labels = [mapping[v] for v in ds[label]] if mapping else [int(v) for v in ds[label]]
        if any(v < 0 for v in labels):
            raise WorkloadError(f"split {name!r} has unlabelled rows (label < 0); choose another test_split")
        texts = ["" if t is None else str(t) for t in ds[options["text_column"]]]
        pairs = None
        if options["text_pair_column"]:
            pairs = ["" if t is None else str(t) for t in ds[options["text_pair_column"]]]
        enc = tokenizer(
            texts, pairs, truncation=True, max_length=options["max_length"], padding="longest",
            return_tensors="pt",
        )
        features = {k: enc[k] for k in tokenizer.model_input_names if k in enc}
        lengths = enc["attention_mask"].sum(dim=1)
        left = tokenizer.padding_side == "left"
        return TokenSplit(features, lengths, torch.tensor(labels, dtype=torch.int64), left)

    validation = None
    if val_name in dd and val_name != test_name:
        validation = encode(dd[val_name], val_name)
    return Data(encode(train, train_name), encode(dd[test_name], test_name), num_classes, validation)


def build_model(options: dict, data: Data) -> nn.Module:
    """The Auto sequence classifier with ``data.num_classes`` outputs, in float32."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    route_library_logs()
    name = options["model"]
    try:
        if options["pretrained"]:
            hf = AutoModelForSequenceClassification.from_pretrained(
                name, num_labels=data.num_classes, ignore_mismatched_sizes=True, dtype=torch.float32
            )
        else:
            config = AutoConfig.from_pretrained(name, num_labels=data.num_classes)
            hf = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    except OSError as err:
        raise WorkloadError(
            f"could not load model {name!r}: {err}. Offline, pass a local save_pretrained directory as 'model'"
        ) from err
    return SequenceClassifier(hf)


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """Embeddings, each block, then the head (every remaining parameter)."""
    hf = model.hf
    base = hf.base_model
    path = BLOCK_PATHS.get(hf.config.model_type, DEFAULT_BLOCK_PATH)
    try:
        blocks = base.get_submodule(path)
        embeddings = base.get_submodule("embeddings")
    except AttributeError as err:
        raise WorkloadError(
            f"model type {hf.config.model_type!r} keeps no blocks at base_model.{path} or no "
            f"base_model.embeddings; add its block path to trainables.workloads.text.BLOCK_PATHS"
        ) from err
    groups = [list(embeddings.parameters())] + [list(block.parameters()) for block in blocks]
    taken = {id(p) for group in groups for p in group}
    return groups + [[p for p in hf.parameters() if id(p) not in taken]]


