"""Ray Job entrypoint for the cluster tests: run one task pinned to each node, print where.

Prints one JSON line: {"alive_nodes": n, "placements": {resource: node_id}, "env_nodes": {...}}.
"""

import json
import os
import sys

import ray


@ray.remote(num_cpus=0)
def where() -> tuple[str, str]:
    # LRSWEEP_CLUSTER_NODE is set by cluster/local.sh on each node and inherited by its workers.
    return ray.get_runtime_context().get_node_id(), os.environ.get("LRSWEEP_CLUSTER_NODE", "?")


def main(resources: list[str]) -> None:
    ray.init()
    refs = {name: where.options(resources={name: 0.01}).remote() for name in resources}
    found = {name: ray.get(ref, timeout=120) for name, ref in refs.items()}
    print(
        json.dumps(
            {
                "alive_nodes": sum(node["Alive"] for node in ray.nodes()),
                "placements": {name: node_id for name, (node_id, _) in found.items()},
                "env_nodes": {name: label for name, (_, label) in found.items()},
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
