"""The built-in workloads: declared (and registered) torch-free in ``builtin``; their data and models
in one module each (``synthetic``, ``cifar10``, ``text``), imported on first use."""

from trainables.workloads import builtin

__all__ = ["builtin"]
