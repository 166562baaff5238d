"""Static checks of the cluster configs (no cluster needed): they parse, match Ray's launcher schema,
keep token auth on and the dashboard off the internet, and local.sh is shellcheck-clean."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_aws_launcher_config_matches_rays_schema_and_is_locked_down():
    import jsonschema
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())
    jsonschema.validate(config, schema)
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        assert all("RAY_AUTH_MODE=token" in c for c in commands if "ray start" in c)
    gpu = config["available_node_types"]["ray.worker.gpu"]
    assert gpu["resources"]["GPU"] >= 1 and gpu["min_workers"] < gpu["max_workers"]
    assert "~/.ray/auth_token" in config["file_mounts"]


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def _has_token_env(container: dict) -> bool:
    env = {e["name"]: e for e in container.get("env", [])}
    return env.get("RAY_AUTH_MODE", {}).get("value") == "token" and "RAY_AUTH_TOKEN" in env


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifests_have_a_gpu_group_token_auth_and_no_public_service(name):
    docs = {d["kind"]: d for d in _docs(CLUSTER / "kuberay" / name)}
    kind = "RayCluster" if name == "raycluster.yaml" else "RayJob"
    resource = docs[kind]
    assert resource["apiVersion"] == "ray.io/v1"
    spec = resource["spec"] if kind == "RayCluster" else resource["spec"]["rayClusterSpec"]
    assert spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"
    templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    assert all(_has_token_env(c) for t in templates for c in _containers(t))
    gpu_groups = [g for g in spec["workerGroupSpecs"]
                  if any("nvidia.com/gpu" in c["resources"]["limits"] for c in _containers(g["template"]))]
    assert gpu_groups and all(g["maxReplicas"] > g["minReplicas"] for g in gpu_groups)
    if kind == "RayJob":
        assert "lrsweep run sweeps/paper.yaml" in resource["spec"]["entrypoint"]
        assert all(_has_token_env(c) for c in _containers(resource["spec"]["submitterPodTemplate"]))


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_local_sh_is_shellcheck_clean():
    result = subprocess.run(["shellcheck", str(CLUSTER / "local.sh")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
