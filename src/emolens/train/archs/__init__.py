"""Registry of architectures. Each is one factory function decorated with :func:`register`.

Every factory takes ``(num_classes, in_channels, input_size, width, dropout)`` and returns an
``nn.Module`` mapping ``float (N, in_channels, input_size, input_size)`` to logits ``(N, num_classes)``.
Tests run over :func:`list_models` (forward, backward, export).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Protocol

from torch import nn

from ...errors import ConfigError


class ModelFactory(Protocol):
    def __call__(
        self, num_classes: int, in_channels: int, input_size: int, width: float, dropout: float
    ) -> nn.Module: ...


_REGISTRY: dict[str, ModelFactory] = {}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    def deco(fn: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def _load_builtin() -> None:
    # Imported here, not at module import, so the registry fills on first use only.
    from . import resnet, seed_cnn, tiny, vgg  # noqa: F401


def list_models() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 1,
    input_size: int = 48,
    width: float = 1.0,
    dropout: float = 0.3,
) -> nn.Module:
    """Build a registered architecture; unknown names raise ConfigError with a suggestion."""
    _load_builtin()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown architecture {name!r}{hint}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](
        num_classes=num_classes, in_channels=in_channels, input_size=input_size, width=width, dropout=dropout
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
