"""The cluster image, checked without a Docker daemon: the Dockerfile installs requirements.lock on a
CUDA base with Python 3.11; the lock pins every package with == and holds the tested Ray, torch and
torchvision and every dependency pyproject.toml asks for; the Dockerfile, the lock and both cluster
YAML files name the same Ray version and the same image tag (also in cluster/README.md's build
commands); .dockerignore keeps the build context to what the Dockerfile copies; and (slow, needs the
package index) pip resolves the lock to exactly itself.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

import pytest
import ray
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.common import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
LOCK = REPO / "requirements.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CLUSTER = yaml.safe_load((REPO / "cluster" / "cluster.yaml").read_text())
RAYJOB = yaml.safe_load((REPO / "cluster" / "kuberay-job.yaml").read_text())
README = (REPO / "cluster" / "README.md").read_text()
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"requirements.lock: {line!r} is not NAME==VERSION"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"requirements.lock: {name} twice"
        pins[name] = m.group(2)
    return pins


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = "\n".join(x for x in DOCKERFILE.splitlines() if not x.lstrip().startswith("#"))
    text = re.sub(r"\\\n", " ", text)
    return [(x.split(None, 1)[0].upper(), x.split(None, 1)[1] if " " in x.strip() else "")
            for x in text.splitlines() if x.strip()]


def image_tag() -> str:
    tags = set(re.findall(r"docker build -t (\S+) \.", DOCKERFILE))
    assert len(tags) == 1, f"the Dockerfile's build command names one tag, not {tags}"
    return tags.pop()


def test_lock_pins_every_package_including_the_tested_ray_and_torch():
    pins = lock_pins()
    assert len(pins) > 50
    for package in ("ray", "torch", "torchvision"):
        assert pins[package] == version(package), f"{package}: lock {pins[package]}, tests ran {version(package)}"
    assert pins["ray"] == ray.__version__
    ray_spec = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == "ray")
    assert str(ray_spec.specifier) == f"=={pins['ray']}", "pyproject pins the image's Ray: laptop and cluster agree"
    assert canonicalize_name(PYPROJECT["project"]["name"]) not in pins, "the project is installed from source"


def test_lock_has_every_dependency_pyproject_asks_for():
    pins = lock_pins()
    wanted = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["cluster"]
    for spec in wanted:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject) is not in requirements.lock: run cluster/lock.py"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"
    assert {"aiohttp", "aiohttp-cors", "opencensus", "py-spy"} <= set(pins), "ray[default] (dashboard, jobs) is locked"


def test_dockerfile_installs_the_lock_on_cuda_with_python_311():
    steps = dockerfile_instructions()
    assert steps[0][0] == "FROM" and re.match(r"nvidia/cuda:\d+\.\d+(\.\d+)?-[\w.-]+$", steps[0][1]), steps[0]
    runs = " && ".join(a for i, a in steps if i == "RUN")
    assert re.search(r"python install 3\.11\b", runs) and "-m venv /opt/venv" in runs
    assert "pip install --no-cache-dir --no-deps -r requirements.lock" in runs and "pip check" in runs
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in runs
    args = dict(a.split("=", 1) for i, a in steps if i == "ARG")
    assert args["RAY_VERSION"] == lock_pins()["ray"] == ray.__version__
    copied = {src for i, a in steps if i == "COPY" and not a.startswith("--from") for src in a.split()[:-1]}
    assert {"requirements.lock", "pyproject.toml", PYPROJECT["project"]["readme"]} <= copied
    for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*").rstrip(".")
        assert package in copied, f"package {package} (pyproject include {pattern!r}) is not copied into the image"


def test_one_image_and_one_ray_everywhere():
    tag = image_tag()
    project = PYPROJECT["project"]["version"]
    assert tag.endswith(f"/pneumonia-tune:{project}-ray{ray.__version__}"), tag
    assert CLUSTER["docker"]["image"] == tag
    cluster = RAYJOB["spec"]["rayClusterSpec"]
    images = [c["image"] for c in cluster["headGroupSpec"]["template"]["spec"]["containers"]]
    images += [c["image"] for g in cluster["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]]
    assert set(images) == {tag}
    assert cluster["rayVersion"] == ray.__version__
    assert f"docker build -t {tag} ." in README and f"docker push {tag}" in README
    assert set(re.findall(r"pneumonia-tune:[\w.-]+", README)) == {tag.split("/")[-1]}


def test_cluster_nodes_run_the_image_and_install_nothing():
    docker = CLUSTER["docker"]
    assert docker["container_name"] and docker["pull_before_run"] is True
    assert "--gpus all" in docker["worker_run_options"], "the GPU workers' containers must get the GPUs"
    assert "--gpus all" not in docker.get("run_options", []) + docker.get("head_run_options", []), \
        "the head (no GPU) must not ask Docker for GPUs"
    commands = " ".join(c for k in ("setup_commands", "head_setup_commands", "worker_setup_commands")
                        for c in CLUSTER.get(k) or [])
    assert not re.search(r"\b(pip|uv|conda|apt-get)\b", commands), "nodes install nothing: the image has it all"
    assert not CLUSTER.get("file_mounts"), "the code is in the image (or a Ray Job's --working-dir)"


def test_dockerignore_keeps_the_context_to_what_is_copied():
    lines = [x.strip() for x in (REPO / ".dockerignore").read_text().splitlines() if x.strip() and not x.startswith("#")]
    assert lines[0] == "*", "an allowlist: everything else (.venv, results, .git) stays out of the build context"
    allowed = {x[1:] for x in lines if x.startswith("!")}
    copied = {src for i, a in dockerfile_instructions() if i == "COPY" and not a.startswith("--from") for src in a.split()[:-1]}
    assert copied == allowed


@pytest.mark.slow
def test_lock_resolves_to_itself_with_pip(tmp_path):
    """pip, with dependencies, from the package index: the lock is consistent and complete (nothing
    resolved that it does not pin, at another version or at all)."""
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", str(report), "-r", str(LOCK)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
                for i in json.loads(report.read_text())["install"]}
    assert resolved == lock_pins()
