"""Every registered architecture: shapes, gradients, size, ONNX export parity, determinism, bad arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from torch import nn

from emolens.errors import ConfigError
from emolens.train.archs import count_parameters, create_model, list_models

MODELS = list_models()
NUM_CLASSES = 7
# (min, max) parameters at width 1, 48x48 gray, 7 classes; architectures added later get loose bounds.
PARAM_BOUNDS = {
    "seed_cnn": (500_000, 3_000_000),
    "vgg": (5_000_000, 20_000_000),
    "resnet": (2_000_000, 15_000_000),
    "tiny": (20_000, 100_000),
}


def _model(name: str, in_channels: int = 1, width: float = 1.0) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, NUM_CLASSES, in_channels=in_channels, width=width)


def test_builtin_architectures_are_registered() -> None:
    assert set(PARAM_BOUNDS) <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_output_is_logits_per_class(name: str, channels: int) -> None:
    model = _model(name, channels).eval()
    with torch.no_grad():
        out = model(torch.rand(3, channels, 48, 48))
    assert out.shape == (3, NUM_CLASSES)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1)), "logits, not probabilities"


@pytest.mark.parametrize("name", MODELS)
def test_other_input_size_and_class_count(name: str) -> None:
    model = create_model(name, 3, in_channels=3, input_size=64, width=0.5).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_parameter(name: str) -> None:
    model = _model(name).train()
    x = torch.rand(4, 1, 48, 48)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_within_bounds_and_width_scales_it(name: str) -> None:
    lo, hi = PARAM_BOUNDS.get(name, (1_000, 50_000_000))
    full = count_parameters(_model(name))
    assert lo <= full <= hi, f"{name}: {full} parameters outside [{lo}, {hi}]"
    assert count_parameters(_model(name, width=0.5)) < full < count_parameters(_model(name, width=1.5))


@pytest.mark.parametrize("name", MODELS)
def test_eval_mode_is_deterministic_and_layout_independent(name: str) -> None:
    model = _model(name).eval()
    x = torch.rand(5, 1, 48, 48)
    with torch.no_grad():
        a, b = model(x), model(x)
        single = model(x[:1])
        cl_model = cast(Any, model).to(memory_format=torch.channels_last)  # Module.to's stubs lack it
        cl = cl_model(x.to(memory_format=torch.channels_last))
    assert torch.equal(a, b)
    torch.testing.assert_close(single, a[:1], atol=1e-5, rtol=1e-5)  # no batch coupling in eval (BN)
    torch.testing.assert_close(cl, a, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_onnx_export_matches_torch(name: str, channels: int, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _model(name, channels).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        (torch.rand(2, channels, 48, 48),),
        str(path),
        opset_version=17,
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" not in ops, "BN should fold into the convs at export"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(5, channels, 48, 48)  # another batch size than at export: the batch axis is dynamic
    got = session.run(["logits"], {"input": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == (5, NUM_CLASSES)
    assert np.abs(got - want).max() < 1e-4


def test_unknown_architecture_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown architecture 'resnt'.*did you mean 'resnet'"):
        create_model("resnt", NUM_CLASSES)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"in_channels": 2}, "in_channels"),
        ({"width": 0.0}, "width"),
        ({"width": float("nan")}, "width"),
        ({"dropout": 1.0}, "dropout"),
        ({"input_size": 4}, "input_size"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_bad_arguments_raise_config_error(name: str, kwargs: dict[str, Any], word: str) -> None:
    args: dict[str, Any] = {"num_classes": NUM_CLASSES, **kwargs}
    if name not in PARAM_BOUNDS:
        pytest.skip("argument checks are only specified for the built-in architectures")
    with pytest.raises(ConfigError, match=word):
        create_model(name, **args)
