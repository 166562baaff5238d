"""Suite-wide settings."""

import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models on a 2-core machine: extra intra-op threads only contend with the other process."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ROOT = Path(__file__).resolve().parent.parent
PACKAGES = tuple(ROOT / name for name in ("strategies", "trainables", "search_spaces", "sweeps", "reports", "lrsweep",
                                          "vocab", "lrstats", "lrresults"))


def _plugin_module(module) -> bool:
    """A module a plugin import added: a source file outside Python's own trees and lrsweep's packages."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    return not any(root in path.parents for root in (Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
                                                     *PACKAGES))


@pytest.fixture(autouse=True, scope="module")
def registries_left_as_found():
    """A test file that imports a plugin in this process (``parse_spec`` with ``plugins``) registers its
    workloads and strategies; they are removed when the file ends, with the plugin's module (so the next
    import registers them again), and the next file sees only the built-ins: ``strategies: all`` counts
    the same whatever ran before it."""
    from strategies import registry
    from trainables import workload

    strategies, workloads, modules = dict(registry._BY_NAME), dict(workload._REGISTRY), set(sys.modules)
    yield
    registry._BY_NAME.clear()
    registry._BY_NAME.update(strategies)
    workload._REGISTRY.clear()
    workload._REGISTRY.update(workloads)
    for name in set(sys.modules) - modules:
        if _plugin_module(sys.modules[name]):
            del sys.modules[name]
