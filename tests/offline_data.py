"""Small data and models in real on-disk formats, generated offline for tests (importable by any test).

- ``write_cifar10(root)``: ``root/cifar-10-batches-py`` in the python-pickle layout of the official
  archive (``data_batch_1..5``, ``test_batch``, ``batches.meta``), tiny and random.
- ``write_text_model(directory, kind)``: a word-level tokenizer (``tokenizers`` WordLevel, saved with
  ``PreTrainedTokenizerFast.save_pretrained``) and a tiny DistilBERT or BERT sequence classifier
  saved with ``save_pretrained``; loadable by the ``transformers`` Auto classes.
- ``write_text_dataset(directory, fmt, pairs)``: train/validation/test files (CSV, JSON lines or
  Parquet) of short sentences whose label a model can learn: single sentences labelled by
  sentiment words, or premise/hypothesis pairs labelled by whether the hypothesis word appears in
  the premise (RTE-style).

Everything is seeded, so repeated calls write identical files.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np

CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["good", "great", "fine", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "dull"]
NEUTRAL = ["the", "a", "movie", "film", "plot", "actor", "is", "was", "very", "quite", "story", "scene"]
VOCAB = SPECIAL_TOKENS + POSITIVE + NEGATIVE + NEUTRAL


def write_cifar10(root: str | Path, per_batch: int = 16, n_test: int = 20, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 (5 x ``per_batch`` training images, ``n_test`` test images); return ``root``."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name: str, n: int) -> None:
        # Rows are 3072 bytes: the red plane, then green, then blue, each 32 x 32 row-major.
        entry = {
            "batch_label": f"tiny {name}",
            "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)

    for i in range(1, 6):
        batch(f"data_batch_{i}", per_batch)
    batch("test_batch", n_test)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_LABELS, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return Path(root)


def write_text_model(directory: str | Path, kind: str = "distilbert", num_labels: int = 2) -> Path:
    """Write a word-level tokenizer and a tiny ``kind`` ("distilbert" or "bert") classifier; return the dir."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        AutoModelForSequenceClassification,
        BertConfig,
        DistilBertConfig,
        PreTrainedTokenizerFast,
    )

    directory = Path(directory)
    vocab = {word: i for i, word in enumerate(VOCAB)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    if kind == "bert":  # BERT marks the second segment with token_type_ids 1
        pair = "[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1"
    else:
        pair = "[CLS] $A [SEP] $B [SEP]"
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair=pair, special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"] if kind == "bert" else None
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
        **({"model_input_names": model_input_names} if model_input_names else {}),
    )
    fast.save_pretrained(directory)
    if kind == "distilbert":
        config = DistilBertConfig(
            vocab_size=len(vocab), dim=16, hidden_dim=32, n_layers=2, n_heads=2,
            max_position_embeddings=64, num_labels=num_labels, pad_token_id=0,
        )
    elif kind == "bert":
        config = BertConfig(
            vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=64, num_labels=num_labels, pad_token_id=0,
        )
    else:
        raise ValueError(f"kind must be 'distilbert' or 'bert', got {kind!r}")
    import torch

    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(directory)
    return directory


def text_rows(n: int, pairs: bool, seed: int) -> list[dict]:
    """``n`` labelled rows: ``{"text", "label"}`` or ``{"premise", "hypothesis", "label"}``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = rng.choices(NEUTRAL, k=rng.randint(2, 8))
        if pairs:
            key = rng.choice(POSITIVE + NEGATIVE)
            entailed = rng.random() < 0.5
            premise = words + ([key] if entailed else [])
            rng.shuffle(premise)
            rows.append({"premise": " ".join(premise), "hypothesis": f"the {key}", "label": int(entailed)})
        else:
            positive = rng.random() < 0.5
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if positive else NEGATIVE))
            rows.append({"text": " ".join(words), "label": "pos" if positive else "neg"})
    return rows


def write_text_dataset(
    directory: str | Path,
    fmt: str = "csv",
    pairs: bool = False,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Write one file per split (``sizes``: split -> rows) as ``fmt`` ("csv", "jsonl" or "parquet");
    return ``{split: path}``."""
    import pandas as pd

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sizes = sizes or {"train": 48, "test": 24}
    paths = {}
    for i, (split, n) in enumerate(sizes.items()):
        frame = pd.DataFrame(text_rows(n, pairs, seed + i))
        path = directory / f"{split}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
        else:
            frame.to_parquet(path, index=False)
        paths[split] = str(path)
    return paths


def text_spec_workload(root: str | Path, sizes: dict[str, int]) -> dict:
    """A sweep spec's ``trec6`` entry: a tiny DistilBERT and a CSV dataset of ``sizes`` rows per split,
    both written under ``root``."""
    model = write_text_model(Path(root) / "model", "distilbert")
    files = write_text_dataset(Path(root) / "text", "csv", sizes=sizes)
    return {"trec6": {"model": str(model), "data_files": files, "label_column": "label", "max_length": 16}}

