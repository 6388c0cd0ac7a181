# hwnas image: installs the project exactly as the README does (requirements.lock, then the package).
# One image for every role of docker-compose.yml: `ray start --head`, `hwnas serve`, `hwnas worker`.
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    HWNAS_DATA_DIR=/var/lib/hwnas
WORKDIR /opt/hwnas
# torch 2.13.0 CPU-only: the lock pins torch==2.13.0; the CPU index keeps CUDA wheels out of the image.
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY core ./core
COPY targets ./targets
COPY nas ./nas
COPY search_spaces ./search_spaces
COPY workers ./workers
COPY api ./api
COPY cli ./cli
RUN pip install --no-cache-dir --no-deps . && mkdir -p /var/lib/hwnas
# 8000: the API and dashboard; 6379: the Ray head's GCS (workers on other machines join it)
EXPOSE 8000 6379
CMD ["hwnas", "serve", "--host", "0.0.0.0", "--port", "8000"]
