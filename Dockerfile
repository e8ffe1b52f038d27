# The study's one image: the Ray head and the GPU workers, on the cluster launcher
# (cluster/cluster.yaml `docker:`) and on KubeRay (cluster/kuberay-job.yaml). From the repository root:
#
#   docker build -t YOUR-REGISTRY/pneumonia-tune:0.1.0-ray2.60.0 .
#   docker push YOUR-REGISTRY/pneumonia-tune:0.1.0-ray2.60.0
#
# The tag is the project's version and the Ray inside. Both YAML files name this tag, and
# tests/unit/test_image.py checks that they, this file and requirements.lock agree on it and on Ray.
#
# CUDA base: torch's wheels bring the CUDA 13 runtime libraries (nvidia-* in requirements.lock); the
# base image adds NVIDIA's container settings, so `docker run --gpus all` mounts the host's driver
# (which must support CUDA 13, i.e. driver 580 or newer) and refuses to start on an older one.
FROM nvidia/cuda:13.0.1-base-ubuntu24.04

# rsync, ssh, bash: the cluster launcher copies files into the container and reaches the workers
# through them; wget: KubeRay's health probes; ca-certificates: S3 and W&B over TLS.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ca-certificates openssh-client rsync wget \
    && rm -rf /var/lib/apt/lists/*

# CPython 3.11, the version the study is tested with (Ubuntu 24.04 ships 3.12 only): uv's standalone
# build, fixed by the pinned uv release, in a plain venv with its own pip.
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python
RUN uv python install 3.11 && "$(uv python find 3.11)" -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1

# Every dependency at its locked version and nothing else (--no-deps: the lock is complete; pip check
# proves it). Its own layer, so a code change rebuilds only the layers below.
ARG RAY_VERSION=2.60.0
WORKDIR /opt/pneumonia-tune
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps -r requirements.lock \
    && pip check \
    && python -c "import ray, sys; sys.exit(0 if ray.__version__ == '${RAY_VERSION}' else 'requirements.lock has ray ' + ray.__version__ + ', not ${RAY_VERSION}')"

# The project itself (a regular install: the code lives in the image; Ray Jobs' --working-dir ships a
# newer checkout over it).
COPY pyproject.toml README.md ./
COPY study ./study
COPY search_spaces ./search_spaces
COPY analysis ./analysis
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && python -c "import study.run, analysis.report"
