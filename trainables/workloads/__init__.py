"""The built-in workloads, one module each; importing a module registers its workload(s)."""

from trainables.workloads import cifar10, synthetic, text

__all__ = ["cifar10", "synthetic", "text"]
