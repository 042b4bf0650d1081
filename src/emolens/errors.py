"""Named exceptions raised at the core of emolens.

Every edge translates them once: the CLI into an exit code and a one-line message
(:func:`exit_code_for`), the REST API into an HTTP status and a JSON body (``http_status``).
Nothing inside the core prints or exits.
"""

from __future__ import annotations


class EmolensError(Exception):
    """Base of every error emolens raises on purpose. ``str(err)`` is a message for a person."""

    exit_code: int = 1
    http_status: int = 400


class InvalidInput(EmolensError):
    """A caller passed an argument that cannot be used (wrong type, shape, option)."""

    exit_code = 2
    http_status = 422


class UnsupportedMedia(EmolensError):
    """A file is not an image or video we can decode (text posing as an image, zero bytes, corrupt)."""

    exit_code = 3
    http_status = 415


class MediaTooLarge(EmolensError):
    """A file or image exceeds a configured limit (bytes, pixels, frames, duration)."""

    exit_code = 3
    http_status = 413


class NoFaceFound(EmolensError):
    """Raised only where a face is required (most APIs return an empty face list instead)."""

    exit_code = 4
    http_status = 422


class DatasetError(EmolensError):
    """A dataset on disk is malformed; the message names the file and, where known, the row."""

    exit_code = 5
    http_status = 422


class ModelFormatError(EmolensError):
    """A model file is missing, unreadable, or does not describe itself as emolens expects."""

    exit_code = 6
    http_status = 500


class ConfigError(EmolensError):
    """A configuration file or override is invalid (unknown key, wrong type, unknown name)."""

    exit_code = 2
    http_status = 422


class CheckpointError(EmolensError):
    """A training checkpoint is missing, corrupt, or belongs to another configuration."""

    exit_code = 6
    http_status = 500


class ExportError(EmolensError):
    """Export to ONNX failed, including a failed parity check against PyTorch."""

    exit_code = 7
    http_status = 500


class MissingExtra(EmolensError):
    """An optional package a feature needs is not installed; ``extra`` names the ``emolens[extra]`` that brings it."""

    exit_code = 11
    http_status = 501

    def __init__(self, message: str, extra: str = "") -> None:
        super().__init__(message)
        self.extra = extra


class BackendError(EmolensError):
    """A backend the work was handed to failed: a model server (Triton) cannot be reached, is not ready or
    refused a request, or a Ray cluster could not be joined or kept failing on a file."""

    exit_code = 10
    http_status = 502


def exit_code_for(err: BaseException) -> int:
    """The CLI exit code for an exception (1 for anything that is not an :class:`EmolensError`)."""
    return err.exit_code if isinstance(err, EmolensError) else 1
