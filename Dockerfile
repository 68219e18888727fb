# The optimise service on CPU: `docker compose` runs it as the dashboard and as scalable workers.
# Build: docker build -t kronos-toto-optimise .    Run: docker run --rm kronos-toto-optimise --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface

# The CPU build of torch first, from PyTorch's CPU index, so that `pip install .` finds the
# pinned torch already satisfied and never pulls a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app
COPY pyproject.toml README.md ./
COPY optimise ./optimise
COPY models ./models
COPY objectives ./objectives
COPY storage ./storage
COPY studies ./studies
RUN pip install . && python -c "import torch; assert not torch.version.cuda, torch.__version__"

# Bundled sample data (compose mounts ./trainingdata over it); the store and the hub cache are
# volumes owned by an unprivileged user.
COPY trainingdata ./trainingdata
RUN useradd --create-home --uid 1000 optimise \
    && mkdir -p /app/store /cache/huggingface \
    && chown -R optimise:optimise /app/store /cache
USER optimise

ENTRYPOINT ["optimise"]
CMD ["--help"]
