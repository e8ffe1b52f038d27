"""The cluster configs (cluster/): offline, fast checks; nothing here talks to AWS or Kubernetes.

- cluster/cluster.yaml goes through Ray's own validation, the steps `ray up` runs before it
  contacts the cloud (ray.autoscaler._private.commands._bootstrap_config): `prepare_config`
  (merge with Ray's AWS defaults, per-type worker limits) then `validate_config` (ray-schema.json
  via jsonschema, plus Ray's cross-field checks). Corrupted copies must be rejected by the same code.
- cluster/kuberay-job.yaml is a RayJob whose entrypoint runs study.run against the RayJob's own
  cluster and whose worker group asks Kubernetes for GPUs.
- Every cluster command passes --data, the Ray version is the tested one everywhere, and the README
  covers the commands a user needs. (The image itself: tests/unit/test_image.py.)
"""
from __future__ import annotations

import copy
import re
import shlex

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from helpers.common import REPO

CLUSTER_YAML = REPO / "cluster" / "cluster.yaml"
KUBERAY_YAML = REPO / "cluster" / "kuberay-job.yaml"
README = REPO / "cluster" / "README.md"


def ray_validate(config: dict) -> dict:
    """What `ray up` does to a config before the provider (AWS) is involved."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def cluster_text() -> str:
    return CLUSTER_YAML.read_text()


@pytest.fixture
def cluster(cluster_text) -> dict:
    return yaml.safe_load(cluster_text)


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return yaml.safe_load(KUBERAY_YAML.read_text())


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


def worker_types(cfg: dict) -> dict:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def all_setup_commands(cfg: dict) -> list[str]:
    return [c for key in ("setup_commands", "head_setup_commands", "worker_setup_commands")
            for c in cfg.get(key) or []]


# ---------------------------------------------------------------- cluster.yaml: Ray's validator

def test_cluster_yaml_passes_rays_validation(cluster):
    prepared = ray_validate(cluster)
    assert prepared["provider"]["type"] == "aws"
    # prepare_config merges Ray's AWS defaults under ours; nothing of ours may be replaced by them.
    # (head_/worker_setup_commands get setup_commands prepended: checked on the next line)
    for key, value in cluster.items():
        if key not in ("available_node_types", "head_setup_commands", "worker_setup_commands"):
            assert prepared[key] == value, key
    n = len(cluster["setup_commands"])
    assert prepared["head_setup_commands"] == cluster["setup_commands"] + cluster["head_setup_commands"]
    assert prepared["worker_setup_commands"][:n] == cluster["setup_commands"]
    for name, node_type in cluster["available_node_types"].items():
        assert prepared["available_node_types"][name]["node_config"] == node_type["node_config"], name


def _first_worker(cfg: dict) -> dict:
    return next(iter(worker_types(cfg).values()))


# Each: (corrupt a copy in place, the error Ray's validation must raise).
CORRUPTIONS = {
    "unknown top-level key (typo)": (lambda c: c.update(max_worker=4), jsonschema.ValidationError),
    "max_workers of the wrong type": (lambda c: c.update(max_workers="ten"), jsonschema.ValidationError),
    "negative idle timeout": (lambda c: c.update(idle_timeout_minutes=-1), jsonschema.ValidationError),
    "fractional GPU count in a node type": (lambda c: _first_worker(c)["resources"].update(GPU=0.5),
                                            jsonschema.ValidationError),
    "node type without node_config": (lambda c: _first_worker(c).pop("node_config"), jsonschema.ValidationError),
    "unknown auth key": (lambda c: c["auth"].update(ssh_usr="ubuntu"), jsonschema.ValidationError),
    "setup command not a string": (lambda c: c["setup_commands"].append(["pip", "install"]),
                                   jsonschema.ValidationError),
    "unknown docker key (typo)": (lambda c: c["docker"].update(imagee="x"), jsonschema.ValidationError),
    "docker run options not a list": (lambda c: c["docker"].update(worker_run_options="--gpus all"),
                                      jsonschema.ValidationError),
    "provider without type": (lambda c: c["provider"].pop("type"), (jsonschema.ValidationError, KeyError)),
    "head_node_type not among the node types": (lambda c: c.update(head_node_type="head"), ValueError),
    "min_workers above the global max_workers": (lambda c: _first_worker(c).update(min_workers=c["max_workers"] + 1),
                                                 ValueError),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_rays_validation_rejects_corrupted_copies(cluster, name):
    corrupt, error = CORRUPTIONS[name]
    ray_validate(cluster)  # the original passes...
    bad = copy.deepcopy(cluster)
    corrupt(bad)
    with pytest.raises(error):  # ...the corrupted copy does not
        ray_validate(bad)


def test_corrupted_yaml_text_is_rejected(cluster_text):
    """Corruptions of the file as text, as an editor would make them."""
    typo = re.sub(r"(?m)^idle_timeout_minutes:", "idle_timeout_minute:", cluster_text, count=1)
    bad_type = re.sub(r"(?m)^max_workers: .*$", "max_workers: ten", cluster_text, count=1)
    bad_indent = re.sub(r"(?m)^  ssh_user:", "ssh_user:", cluster_text, count=1)  # falls out of auth:
    for text in (typo, bad_type, bad_indent):
        assert text != cluster_text
        with pytest.raises(jsonschema.ValidationError):
            ray_validate(yaml.safe_load(text))


# ---------------------------------------------------------------- cluster.yaml: shape and setup

def test_head_takes_no_gpu_trials_and_workers_autoscale_from_zero(cluster):
    head = cluster["available_node_types"][cluster["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] > 0
    assert head.get("max_workers", 0) == 0
    workers = worker_types(cluster)
    assert workers
    for name, t in workers.items():
        assert t["resources"]["GPU"] >= 1, name
        assert t.get("min_workers", 0) == 0, f"{name}: GPU nodes should only exist while trials need them"
        assert 1 <= t["max_workers"] <= cluster["max_workers"], name
    assert cluster["idle_timeout_minutes"] > 0
    assert len({t["node_config"]["ImageId"] for t in cluster["available_node_types"].values()}) == 1


def test_ray_version_is_the_tested_ray_everywhere(cluster, rayjob, readme):
    """Laptop and cluster must run the same Ray: the image's tag names it, the RayJob declares it."""
    assert cluster["docker"]["image"].endswith(f"-ray{ray.__version__}")
    assert rayjob["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    assert set(re.findall(r"ray\[[^\]]*\]==([0-9][\w.]*)", readme)) <= {ray.__version__}
    assert set(re.findall(r"-ray([0-9][\w.]*[0-9])", readme)) == {ray.__version__}


def test_every_cluster_command_passes_data_from_s3(cluster, readme, rayjob):
    """Without --data a study on a cluster would train on the bundled sample (study.run refuses it);
    the documented commands read the data set from the bucket, which the driver copies to the head."""
    commands = _study_commands(readme, rayjob)
    assert len(commands) >= 5
    for c in commands:
        assert "--data s3://YOUR-BUCKET/chest_xray" in c, c
    assert "s3://YOUR-BUCKET/chest_xray" in cluster_comments(), "cluster.yaml's header shows the --data to pass"
    # and the cluster commands in the top-level README and study/run.py's usage text (its docstring)
    for source in (REPO / "README.md", REPO / "study" / "run.py"):
        text = source.read_text()
        text = (text.split('"""')[1] if source.suffix == ".py" else text).replace("\\\n", " ")
        submits = [x for x in text.splitlines() if re.search(r"ray (job )?submit ", x)]
        assert submits, source
        for line in submits:
            assert "--data s3://" in line and "--address auto" in line, f"{source.name}: {line}"


def cluster_comments() -> str:
    return "\n".join(x for x in CLUSTER_YAML.read_text().splitlines() if x.lstrip().startswith("#"))


def test_start_commands(cluster):
    head = " ".join(cluster["head_start_ray_commands"])
    worker = " ".join(cluster["worker_start_ray_commands"])
    assert "ray start --head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "ray start --address=$RAY_HEAD_IP:6379" in worker


# ---------------------------------------------------------------- kuberay-job.yaml

# Field names of the RayJob v1 CRD (KubeRay's ray.io_rayjobs.yaml) used to catch typos, which
# `kubectl apply` would otherwise drop silently or reject only on a live cluster.
RAYJOB_SPEC_FIELDS = {
    "activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy", "entrypoint",
    "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId", "managedBy", "metadata",
    "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes", "submissionMode", "submitterConfig",
    "submitterPodTemplate", "suspend", "ttlSecondsAfterFinished"}
RAYCLUSTER_SPEC_FIELDS = {
    "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions", "headGroupSpec",
    "headServiceAnnotations", "managedBy", "rayVersion", "suspend", "workerGroupSpecs"}
HEAD_GROUP_FIELDS = {"enableIngress", "headService", "rayStartParams", "serviceType", "template"}
WORKER_GROUP_FIELDS = {"groupName", "idleTimeoutSeconds", "maxReplicas", "minReplicas", "numOfHosts",
                       "rayStartParams", "replicas", "scaleStrategy", "suspend", "template"}


def _entrypoint_args(rayjob: dict) -> list[str]:
    return shlex.split(rayjob["spec"]["entrypoint"])


def _option(args: list[str], flag: str) -> str:
    assert flag in args, f"entrypoint lacks {flag}"
    return args[args.index(flag) + 1]


def test_rayjob_runs_the_study_on_its_own_cluster(rayjob):
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    args = _entrypoint_args(rayjob)
    assert args[:3] == ["python", "-m", "study.run"]
    assert _option(args, "--address") == "auto"
    assert _option(args, "--storage").startswith("s3://")
    assert _option(args, "--experiment")
    spec = rayjob["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0


def test_rayjob_worker_group_requests_gpus_and_head_none(rayjob):
    cluster = rayjob["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"].get("limits", {})
    groups = cluster["workerGroupSpecs"]
    assert groups
    for g in groups:
        container = g["template"]["spec"]["containers"][0]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1, g["groupName"]
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], g["groupName"]
        assert container["image"] == head["image"], "head and workers must run the same image"
    assert cluster["enableInTreeAutoscaling"] is True


def test_rayjob_field_names_exist_in_the_crd(rayjob):
    spec = rayjob["spec"]
    assert set(spec) <= RAYJOB_SPEC_FIELDS, set(spec) - RAYJOB_SPEC_FIELDS
    cluster = spec["rayClusterSpec"]
    assert set(cluster) <= RAYCLUSTER_SPEC_FIELDS, set(cluster) - RAYCLUSTER_SPEC_FIELDS
    assert set(cluster["headGroupSpec"]) <= HEAD_GROUP_FIELDS
    for g in cluster["workerGroupSpecs"]:
        assert set(g) <= WORKER_GROUP_FIELDS, set(g) - WORKER_GROUP_FIELDS
        assert all(isinstance(v, str) for v in g["rayStartParams"].values())  # the CRD wants strings
    assert all(isinstance(v, str) for v in cluster["headGroupSpec"]["rayStartParams"].values())


# ---------------------------------------------------------------- README and study/run.py

def test_readme_covers_the_workflow(readme):
    for needle in ("docker build -t YOUR-REGISTRY/pneumonia-tune:", "docker push YOUR-REGISTRY/pneumonia-tune:",
                   "ray up cluster/cluster.yaml",
                   "ray submit cluster/cluster.yaml study/run.py -- --experiment",
                   "ray submit --tmux cluster/cluster.yaml study/run.py -- --experiment all --address auto",
                   "ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m study.run --experiment all",
                   "ray down cluster/cluster.yaml",
                   "ray dashboard cluster/cluster.yaml", "ray status", "tail -n 100 -f",
                   "--storage s3://YOUR-BUCKET/pneumonia-study", "--gpus-per-trial 0.25",
                   "python -m analysis.report s3://YOUR-BUCKET/pneumonia-study --out report",
                   "WANDB_API_KEY", "kubectl apply -f cluster/kuberay-job.yaml", "cluster/lock.py",
                   "list prices", "none of this has been run on AWS"):
        assert needle in readme, needle


def test_readme_explains_every_placeholder(cluster_text, readme):
    text = cluster_text + KUBERAY_YAML.read_text()
    placeholders = set(re.findall(r"YOUR-[A-Z-]*[A-Z]", text)) | set(re.findall(r"ami-REPLACE[\w-]*", text))
    assert {"YOUR-BUCKET", "YOUR-AWS-ACCOUNT-ID", "ami-REPLACE-WITH-DLAMI-ID", "YOUR-REGISTRY"} <= placeholders
    for p in placeholders:
        assert f"`{p}`" in readme, f"placeholder {p} is not explained in cluster/README.md"


def _study_commands(readme: str, rayjob: dict) -> list[str]:
    """The study's arguments in every cluster command: the README's and the RayJob entrypoint."""
    commands = [rayjob["spec"]["entrypoint"].split("study.run", 1)[1]]
    for line in readme.replace("\\\n", " ").splitlines():
        for marker in ("study/run.py -- ", "python -m study.run "):
            if marker in line:
                commands.append(line.split(marker, 1)[1])
    return commands


def _study_flags(readme: str, rayjob: dict) -> set[str]:
    return {f for c in _study_commands(readme, rayjob) for f in re.findall(r"(?<![\w-])--[a-z][a-z-]*", c)}


def test_every_cluster_command_joins_the_cluster_and_asks_for_gpus(readme, rayjob):
    """study/run.py defaults to 0 GPUs per trial when the cluster has no GPU yet, which is always
    the case on an autoscaling cluster whose head has none: the flag must be explicit."""
    commands = _study_commands(readme, rayjob)
    assert len(commands) >= 4
    for c in commands:
        assert "--address auto" in c and "--gpus-per-trial " in c and "--storage s3://" in c, c


def test_study_flags_exist_in_run_py(readme, rayjob):
    run_py = REPO / "study" / "run.py"
    if not run_py.exists():
        pytest.skip("study/run.py not written yet")
    source = run_py.read_text()
    flags = _study_flags(readme, rayjob)
    assert {"--experiment", "--address", "--storage", "--data", "--gpus-per-trial"} <= flags
    missing = sorted(f for f in flags if f'"{f}"' not in source and f"'{f}'" not in source)
    assert not missing, f"flags used in cluster/ but not defined in study/run.py: {missing}"
