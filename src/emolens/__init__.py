"""emolens: read emotions from faces.

The inference API is imported lazily so ``import emolens`` stays cheap and never pulls in torch::

    from emolens import Analyzer
    result = Analyzer().analyze("photo.jpg")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .inference.analyzer import Analyzer
    from .results import FaceResult, FrameResult, ImageResult
    from .video.stream import iter_video

__all__ = ["Analyzer", "FaceResult", "FrameResult", "ImageResult", "__version__", "iter_video"]


def __getattr__(name: str) -> Any:
    if name == "Analyzer":
        from .inference.analyzer import Analyzer

        return Analyzer
    if name == "iter_video":
        try:
            from .video.stream import iter_video
        except ImportError as err:  # the core install: name the extra that brings video reading
            from .extras import missing_extra

            raise (missing_extra(err, "video") or err) from err
        return iter_video
    if name in ("FaceResult", "FrameResult", "ImageResult"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'emolens' has no attribute {name!r}")
