"""Everything in cluster/ parses and validates with the tool that consumes it."""

from __future__ import annotations

from pathlib import Path

import yaml

CLUSTER = Path(__file__).parents[2] / "cluster"


def test_launcher_config_passes_rays_schema_and_keeps_ray_private():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(raw))  # raises on any schema violation
    # the GPU workers the guide documents are started, not only allowed
    gpu = raw["available_node_types"]["gpu_worker"]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p"))
    assert 1 <= gpu["min_workers"] <= gpu["max_workers"]
    assert raw["provider"]["use_internal_ips"] is True
    head = " ".join(raw["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "--dashboard-host=127.0.0.1" in head
    assert all(
        "RAY_AUTH_MODE=token" in " ".join(raw[k])
        for k in ("head_start_ray_commands", "worker_start_ray_commands")
    )


def test_runtime_env_is_accepted_by_ray():
    from ray.runtime_env import RuntimeEnv

    env = RuntimeEnv(**yaml.safe_load((CLUSTER / "runtime_env.yaml").read_text()))
    # authentication is the cluster's and the submitter's, never a job's env var
    assert "RAY_AUTH_MODE" not in env["env_vars"]


def test_rayjob_manifest_is_a_gpu_rayjob_with_token_auth():
    job = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    assert spec["entrypoint"].startswith("relu-landscape scan ")
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["serviceType"] == "ClusterIP"
    pods = [
        cluster["headGroupSpec"]["template"],
        spec["submitterPodTemplate"],
        *(g["template"] for g in cluster["workerGroupSpecs"]),
    ]
    for pod in pods:
        for c in pod["spec"]["containers"]:
            env = {e["name"]: e for e in c["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token"
            assert (
                env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
                == "ray-auth-token"
            )
    gpu = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    group = cluster["workerGroupSpecs"][0]
    assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_guide_names_every_file_and_the_submit_command():
    guide = (CLUSTER / "README.md").read_text()
    for path in CLUSTER.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in guide
    assert "ray job submit" in guide and "--working-dir . --" in guide
    assert "ray get-auth-token --generate" in guide
