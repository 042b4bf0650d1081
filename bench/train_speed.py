"""Training and inference speed of every registered architecture on synthetic 48x48 faces.

For each architecture, width and device it prints: parameters, multiply-adds per image (MMAC; FLOPs
are about twice that), training images/s (forward + backward + SGD step on batch 128, with
augmentation off and on; augmentation time is included), PyTorch inference images/s (eval mode,
batch 64) and, with ``--onnx``, ONNX Runtime inference images/s. On the CPU each row is measured in
fp32 and in bf16 (autocast + channels_last, as ``train.precision=bf16`` trains) side by side, with the
bf16/fp32 ratio of training speed (``--precision`` picks one). CUDA runs AMP (float16 + GradScaler)
when a GPU is present. Rates come from the median batch time, robust to other work on a shared
machine; ``--clock cpu --threads 1`` gives images per CPU-second, steadier still.

    .venv/bin/python bench/train_speed.py --archs seed_cnn,vgg --width 0.5,1 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from emolens.config import AugmentConfig
from emolens.train.archs import count_parameters, create_model, list_models
from emolens.train.augment import BatchAugment
from emolens.train.precision import autocast, cpu_has_native_bf16, memory_format

NUM_CLASSES = 7
SIZE = 48


def count_macs(model: nn.Module, in_channels: int = 1, size: int = SIZE) -> int:
    """Multiply-adds of one image through every Conv2d and Linear (pooling, BN, ReLU, adds ignored)."""
    total = 0

    def hook(mod: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
            total += out[0].numel() * k
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_channels, size, size, device=next(model.parameters()).device))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total


def _timed(step: Callable[[], object], warmup: int, batches: int, device: torch.device, clock: str) -> float:
    """Median seconds per call of ``step`` over ``batches`` calls, after ``warmup`` untimed calls.

    The median, not the mean, so that bursts of other work on a shared machine do not dominate.
    ``clock="cpu"`` measures this process's CPU time instead of wall time (summed over threads).
    """
    now = time.process_time if clock == "cpu" else time.perf_counter
    for _ in range(warmup):
        step()
    times = []
    for _ in range(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = now()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(now() - start)
    return max(statistics.median(times), 1e-9)


def _autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """float16 AMP on CUDA; on the CPU the trainer's own context for ``precision`` (fp32 or bf16)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return autocast(device, precision) if precision == "bf16" else nullcontext()


def _format(device: torch.device, precision: str, args: argparse.Namespace) -> torch.memory_format:
    """The trainer's memory format for ``precision`` (channels_last for CPU bf16), or channels_last
    everywhere with ``--channels-last``."""
    return torch.channels_last if args.channels_last else memory_format(device, precision)


def train_speed(model: nn.Module, device: torch.device, precision: str, augment: bool,
                args: argparse.Namespace) -> float:
    """Training images/s: augmentation (optional), forward, loss, backward, SGD step."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.batch_size, 1, SIZE, SIZE, device=device)
    y = torch.randint(0, NUM_CLASSES, (args.batch_size,), device=device)
    aug = BatchAugment(AugmentConfig())
    fmt = _format(device, precision, args)

    def step() -> None:
        batch = (aug(x, gen) if augment else x).contiguous(memory_format=fmt)
        opt.zero_grad(set_to_none=True)
        with _autocast(device, precision):
            logits = model(batch)
        loss = nn.functional.cross_entropy(logits.float(), y, label_smoothing=0.1)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return args.batch_size / _timed(step, args.warmup, args.batches, device, args.clock)


def infer_speed(model: nn.Module, device: torch.device, precision: str, args: argparse.Namespace) -> float:
    """Inference images/s in eval mode (no autograd), batch ``--infer-batch``."""
    model.eval()
    x = torch.rand(args.infer_batch, 1, SIZE, SIZE, device=device).contiguous(
        memory_format=_format(device, precision, args))

    def step() -> None:
        with torch.inference_mode(), _autocast(device, precision):
            model(x)

    return args.infer_batch / _timed(step, args.warmup, args.batches, device, args.clock)


def onnx_speed(model: nn.Module, args: argparse.Namespace) -> float:
    """ONNX Runtime (CPU) inference images/s, batch ``--infer-batch``, after a legacy opset-17 export."""
    import onnxruntime as ort

    model = model.to("cpu").eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        path = str(Path(tmp) / "model.onnx")
        torch.onnx.export(model, (torch.rand(1, 1, SIZE, SIZE),), path, opset_version=17, dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    x = torch.rand(args.infer_batch, 1, SIZE, SIZE).numpy()
    cpu = torch.device("cpu")
    return args.infer_batch / _timed(lambda: session.run(None, {"input": x}), args.warmup, args.batches, cpu,
                                     args.clock)


def bench_arch(name: str, width: float, device: torch.device, precision: str,
               args: argparse.Namespace) -> dict[str, float]:
    """One row of figures for ``name`` at ``width`` on ``device`` in ``precision`` (fp32 | bf16)."""
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES, in_channels=1, input_size=SIZE, width=width).to(device)
    model = cast(Any, model).to(memory_format=_format(device, precision, args))  # Module.to's stubs lack it
    row = {"params": count_parameters(model), "mmac": count_macs(model) / 1e6}
    row["train"] = train_speed(model, device, precision, augment=False, args=args)
    row["train_aug"] = train_speed(model, device, precision, augment=True, args=args)
    row["infer"] = infer_speed(model, device, precision, args)
    ort_wanted = args.onnx and device.type == "cpu" and precision == "fp32"
    row["ort"] = onnx_speed(model.float().to(memory_format=torch.contiguous_format), args) if ort_wanted \
        else float("nan")
    return row


def aug_speed(device: torch.device, args: argparse.Namespace) -> float:
    """Images/s of BatchAugment alone with the default AugmentConfig."""
    aug = BatchAugment(AugmentConfig())
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.batch_size, 1, SIZE, SIZE, device=device)
    return args.batch_size / _timed(lambda: aug(x, gen), args.warmup, args.batches, device, args.clock)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="all", help="comma-separated names, or 'all' (default)")
    p.add_argument("--batches", type=int, default=10, help="timed batches per measurement (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--batch-size", type=int, default=128, help="training batch (default 128)")
    p.add_argument("--infer-batch", type=int, default=64, help="inference batch (default 64)")
    p.add_argument("--width", default="1", help="width multiplier(s), comma-separated (default 1)")
    p.add_argument("--precision", choices=["both", "fp32", "bf16"], default="both",
                   help="CPU training precision: fp32 and bf16 side by side (default), or one of them")
    p.add_argument("--device", choices=["all", "cpu", "cuda"], default="all",
                   help="cpu, cuda, or all (CPU plus CUDA when available; the default)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time (default), or this process's CPU time: images per CPU-second, steady on a "
                        "busy shared machine; use with --threads 1")
    p.add_argument("--onnx", action="store_true", help="also time ONNX Runtime inference on the CPU")
    p.add_argument("--channels-last", action="store_true", help="run models and batches channels-last")
    args = p.parse_args(argv)
    known = list_models()
    args.arch_list = known if args.archs == "all" else [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in args.arch_list if a not in known]
    if unknown:
        p.error(f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        args.widths = [float(w) for w in args.width.split(",") if w.strip()]
    except ValueError:
        p.error(f"--width must be numbers separated by commas, got {args.width!r}")
    if not args.widths or min(args.widths) <= 0:
        p.error("--width must list positive multipliers")
    args.precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    if min(args.batches, args.batch_size, args.infer_batch) < 1 or args.warmup < 0:
        p.error("--batches, --batch-size and --infer-batch must be >= 1, --warmup >= 0")
    return args


def _cells(r: dict[str, float] | None) -> str:
    if r is None:
        return f" {'-':>9} {'-':>9} {'-':>9}"
    return f" {r['train']:>9.0f} {r['train_aug']:>9.0f} {r['infer']:>9.0f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            raise SystemExit("--device cuda: no CUDA device available")
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, native CPU bf16 "
          f"{'yes' if cpu_has_native_bf16() else 'no (bf16 is emulated, slow)'}, train batch {args.batch_size}, "
          f"infer batch {args.infer_batch}, {args.batches} timed batches"
          f"{', channels-last everywhere' if args.channels_last else ''}, {args.clock} clock")
    print("images/s per precision: train (no augmentation), train+aug (default augmentation), infer; "
          "bf16 = autocast + channels_last")
    both = args.precisions == ["fp32", "bf16"]
    header = f"{'device':<8} {'arch':<10} {'width':>5} {'params':>11} {'MMAC/img':>9}"
    for prec in args.precisions:
        header += f" {prec + ' train':>9} {'+aug':>9} {'infer':>9}"
    header += (f" {'bf16/fp32':>9}" if both else "") + (f" {'ORT img/s':>10}" if args.onnx else "")
    print(header)
    print("-" * len(header))
    for device in devices:
        label = "cuda+amp" if device.type == "cuda" else "cpu"
        for name in args.arch_list:
            for width in args.widths:
                rows: dict[str, dict[str, float] | None] = {}
                for prec in args.precisions:  # CUDA measures its AMP once, in the first column
                    first = prec == args.precisions[0]
                    rows[prec] = bench_arch(name, width, device, prec, args) if device.type == "cpu" or first \
                        else None
                any_row = next(r for r in rows.values() if r is not None)
                line = f"{label:<8} {name:<10} {width:>5g} {int(any_row['params']):>11,} {any_row['mmac']:>9.1f}"
                line += "".join(_cells(rows[prec]) for prec in args.precisions)
                if both:
                    fp32, bf16 = rows["fp32"], rows["bf16"]
                    ratio = f"{bf16['train_aug'] / fp32['train_aug']:.2f}x" if fp32 and bf16 else "-"
                    line += f" {ratio:>9}"
                if args.onnx:
                    ort = rows.get("fp32")
                    line += f" {ort['ort']:>10.0f}" if ort and device.type == "cpu" else f" {'-':>10}"
                print(line, flush=True)
        print(f"{label:<8} augment alone (default AugmentConfig): {aug_speed(device, args):,.0f} img/s")


if __name__ == "__main__":
    main()
