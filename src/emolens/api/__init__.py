"""The emolens REST API (FastAPI) and its offline web page.

``create_app(settings, analyzer_factory)`` builds the app; ``Settings`` reads ``EMOLENS_*``
variables. ``emolens serve`` runs it with uvicorn.
"""

from __future__ import annotations

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
