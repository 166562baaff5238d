"""A seed run's test predictions, packed: how the trainable reports them and the ``predictions`` table keeps them.

At its last epoch a seed-stage run adds ``metrics["predictions"]`` (``pack``): the predicted class of
every test row, one byte each (two, little-endian, above 256 classes), and whether each was right, one
bit each (``numpy.packbits``, first row in the high bit), both base64 in the metrics dict so the
durable record (JSON) keeps them as text. Correctness is what the report's uncertainty over test rows
needs and costs n/8 bytes; the classes (n bytes) let a later analysis compare what two strategies
predicted, not just whether each was right. Synthetic's 1,600 test rows: 1,800 bytes per run.
Imports only numpy, so trainables, sweeps and reports share it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

KEY = "predictions"
"""The metrics key of a seed run's last epoch that holds ``pack``'s dict."""

WIDTHS = {1: "<u1", 2: "<u2"}
"""Bytes per predicted class -> numpy dtype (1 up to 256 classes, 2 up to 65,536)."""


def width_for(num_classes: int) -> int:
    """Bytes per predicted class for a task of ``num_classes`` classes."""
    if num_classes <= 256:
        return 1
    if num_classes <= 65536:
        return 2
    raise ValueError(f"predictions: num_classes must be at most 65536 to pack, got {num_classes}")


def pack(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """The metrics dict entry of one run's predictions: ``{rows, classes, width, n_correct, predicted,
    correct}`` (``predicted`` and ``correct`` base64 text, see the module docstring)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape or predicted.ndim != 1:
        raise ValueError(f"predictions: predicted {predicted.shape} and labels {labels.shape} must be equal 1-d shapes")
    width = width_for(num_classes)
    correct = predicted == labels
    return {"rows": int(predicted.size), "classes": int(num_classes), "width": width,
            "n_correct": int(correct.sum()),
            "predicted": base64.b64encode(predicted.astype(WIDTHS[width]).tobytes()).decode("ascii"),
            "correct": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii")}


def blobs(packed: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The raw bytes of a ``pack`` dict: (predicted classes, correctness bits), as the table stores them."""
    return base64.b64decode(packed["predicted"]), base64.b64decode(packed["correct"])


def correct_vector(blob: bytes, rows: int) -> np.ndarray:
    """The boolean correct/incorrect vector (length ``rows``) from its packed bits."""
    bits = np.unpackbits(np.frombuffer(blob, dtype=np.uint8), count=rows)
    if bits.size != rows:
        raise ValueError(f"predictions: {len(blob)} bytes of correctness bits cannot hold {rows} rows")
    return bits.astype(bool)


def predicted_vector(blob: bytes, width: int) -> np.ndarray:
    """The predicted class of every test row from its packed bytes (``width`` bytes each)."""
    if width not in WIDTHS:
        raise ValueError(f"predictions: width must be one of {sorted(WIDTHS)}, got {width!r}")
    return np.frombuffer(blob, dtype=WIDTHS[width]).astype(np.int64)
