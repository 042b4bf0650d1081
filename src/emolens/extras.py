"""Optional extras: which ``pip install 'emolens[EXTRA]'`` brings a missing package.

The core install (``pip install emolens``) runs ``emolens analyze`` and the Python API
(:class:`~emolens.inference.analyzer.Analyzer`): numpy, ONNX Runtime, Pillow, typer, rich, tqdm,
PyYAML. Everything else comes with an extra:

``opencv``    OpenCV: faster image operations (:mod:`emolens.imgops`), annotated images, the Haar
              detector; every extra that reads video brings it
``video``     video analysis and its outputs: OpenCV, SciPy (tracking), PyArrow (Parquet), PyAV (H.264, strict
              JPEG checks), Matplotlib (timelines)
``campaign``  ad campaigns and norms: ``video`` plus pandas
``serve``     the REST API, web page, jobs and studies: ``campaign`` plus FastAPI, uvicorn, pydantic
``train``     training, evaluation, export, calibration, tuning: torch (CPU), ONNX, scikit-learn, Optuna
``cluster``   Ray batch work and the Triton client
``dlib``      dlib's HOG face detector, for comparison
``all``       every extra above

:func:`missing_extra` turns the ``ModuleNotFoundError`` of a command's lazy import into a
:class:`~emolens.errors.MissingExtra` that names the extra to install.
"""

from __future__ import annotations

from .errors import MissingExtra

EXTRA_OF_MODULE: dict[str, str] = {
    "cv2": "opencv",
    "scipy": "video",
    "pyarrow": "video",
    "av": "video",
    "matplotlib": "video",
    "pandas": "campaign",
    "fastapi": "serve",
    "fastapi_offline": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "pydantic": "serve",
    "pydantic_settings": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "torch": "train",
    "onnx": "train",
    "onnxscript": "train",
    "sklearn": "train",
    "optuna": "train",
    "ray": "cluster",
    "tritonclient": "cluster",
    "dlib": "dlib",
}
"""Top-level module -> the extra that installs it."""


INCLUDES: dict[str, set[str]] = {
    "video": {"opencv", "video"},
    "campaign": {"opencv", "video", "campaign"},
    "serve": {"opencv", "video", "campaign", "serve"},
    "train": {"opencv", "video", "train"},
}
"""The extras each extra brings with it (pyproject.toml)."""

EXTRA_OF_COMMAND: dict[str, str] = {
    "video": "video", "campaign": "campaign", "norms": "campaign", "serve": "serve", "train": "train",
    "tune": "train", "evaluate": "train", "export": "train", "calibrate": "train", "train-keypoints": "train",
    "export-keypoints": "train", "compare": "train",
}
"""The extra a command needs as a whole: named instead of a smaller one it includes, so that one install
is enough (``emolens video`` on the core install names ``video``, not ``opencv`` and then ``video``)."""


def missing_extra(err: ImportError, command: str | None = None) -> MissingExtra | None:
    """The named error for an optional package that is not installed (None when ``err`` is about a module
    no extra provides: a broken install, not a missing extra)."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(name)
    if extra is None:
        return None
    whole = EXTRA_OF_COMMAND.get(command or "")
    if whole is not None and extra in INCLUDES.get(whole, {whole}):
        extra = whole
    what = f"emolens {command}" if command else "this feature"
    return MissingExtra(f"{what} needs the optional package {name!r}, which is not installed: "
                        f"pip install 'emolens[{extra}]' (or 'emolens[all]')", extra=extra)
