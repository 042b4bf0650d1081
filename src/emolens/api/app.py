"""``create_app()``: the emolens REST API and its offline web page.

    uvicorn --factory emolens.api.app:create_app        # settings from EMOLENS_* variables

The analyzer is built once in the lifespan (a bad model stops startup with a clear error) and
reaches routes through :func:`emolens.api.deps.get_engine`. Routes: ``POST /v1/analyze``,
``POST /v1/analyze/batch``, ``GET /v1/models``, ``GET /healthz``, video jobs (``POST /v1/videos``,
``GET /v1/jobs/...``, run by the :class:`~emolens.api.jobs_routes.JobService` the lifespan starts
and stops), campaign jobs (``POST /v1/campaigns``, ``POST /v1/campaigns/from-path`` within
``settings.data_root``, ``GET /v1/campaigns/{id}/report``); docs at ``/docs``; the web page at ``/``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..studies.settings import StudySettings
from .auth import ApiKeyMiddleware
from .bodylimit import BodyLimitMiddleware, LimitFor
from .campaign_routes import campaigns_router
from .deps import AnalyzerFactory, Engine, build_analyzer
from .errors import install_error_handlers
from .jobs_routes import JobService, jobs_router
from .routes import health_router, router
from .settings import Settings
from .study_routes import add_studies, study_body_limits

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MULTIPART_SLACK = 64 * 1024  # multipart boundaries, part headers and the small option fields
OTHER_BODY_LIMIT = 64 * 1024  # no other route takes a body

# The page loads nothing from elsewhere; the policy makes the browser refuse it if it ever tried.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def body_limits(settings: Settings) -> LimitFor:
    """The request body limit of each route (bytes), from the settings."""
    limits = {
        "/v1/analyze": settings.max_upload_bytes + MULTIPART_SLACK,
        "/v1/analyze/batch": settings.max_batch_bytes + MULTIPART_SLACK,
        "/v1/videos": settings.max_video_bytes + MULTIPART_SLACK,
        # every file part carries its own headers (name, file name, type): a few hundred bytes
        "/v1/campaigns": settings.max_campaign_bytes + MULTIPART_SLACK + 1024 * settings.max_campaign_files,
    }

    study_limit = study_body_limits(StudySettings())

    def limit_for(method: str, path: str) -> int | None:
        study = study_limit(path)  # ad uploads and recording chunks (raw bodies, paths with ids)
        return study if study is not None else limits.get(path.rstrip("/") or "/", OTHER_BODY_LIMIT)

    return limit_for


def create_app(settings: Settings | None = None, analyzer_factory: AnalyzerFactory | None = None) -> FastAPI:
    """Build the API. ``settings`` default to ``Settings()`` (``EMOLENS_*`` variables);
    ``analyzer_factory(settings)`` builds the analyzer (default: the ONNX :class:`Analyzer`)."""
    settings = settings or Settings()
    engine = Engine(settings, analyzer_factory or build_analyzer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        analyzer = await run_in_threadpool(engine.load)
        log.info("emolens API ready with model %s", analyzer.model_name)
        await run_in_threadpool(app.state.jobs.try_start)
        yield
        await run_in_threadpool(app.state.jobs.close)
        engine.close()

    app = FastAPI(
        title="emolens",
        version=__version__,
        description="Facial emotion recognition: find the faces in an image and read the emotion of each.",
        lifespan=lifespan,
        docs_url=None,  # served by _add_docs from the package's own assets (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.jobs = JobService(settings, engine)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(router)
    app.include_router(jobs_router)
    app.include_router(campaigns_router)
    add_studies(app)  # ad-test studies: routes, /studies and /watch pages, the study job kind
    _add_page(app)
    _add_docs(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key"],
        )
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(ApiKeyMiddleware, settings=settings)  # outermost: 401 before any body is read
    return app


def _add_page(app: FastAPI) -> None:
    """Serve the web page at ``/`` and its script and style under ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its script and style (vendored by the ``fastapi-offline`` package)
    under ``/docs-static``: FastAPI's default loads them from a CDN, which an offline machine cannot reach."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=assets), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js", swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )
