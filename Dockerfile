# emolens REST API and web page: ONNX Runtime inference only (no torch), the shipped model inside.
#   docker build -t emolens .
#   docker run --rm -p 8000:8000 emolens            # then open http://localhost:8000/
#   docker run --rm -p 8000:8000 -e EMOLENS_API_KEY=secret emolens
# Settings come from EMOLENS_* variables (see emolens.api.settings.Settings).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
# A wheel of emolens alone; its dependencies are resolved in the runtime stage.
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --gid 10001 emolens \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin emolens
COPY --from=build /wheels /wheels
# The [serve] extra: the inference path plus the API, jobs, video and campaign packages; no [train]
# extra, so no torch. Fail the build if torch slipped in or no model is shipped.
# DL3013 (pin versions): this is our own wheel, built above; its dependencies are bounded in pyproject.toml.
# hadolint ignore=DL3013
RUN whl="$(ls /wheels/emolens-*.whl)" \
    && pip install "${whl}[serve]" \
    && rm -rf /wheels \
    && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
    && python -c "from pathlib import Path; from emolens.inference.shipped import default_model_path as d; assert Path(d()).is_file(), d()"

USER 10001:10001
WORKDIR /home/emolens
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
CMD ["emolens", "serve", "--host", "0.0.0.0", "--port", "8000"]
