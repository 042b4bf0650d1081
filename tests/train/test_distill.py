"""Knowledge distillation (distill.teacher/alpha/temperature) on generated data.

The teacher is trained on deliberately relabelled data (class k shown as class k+1), so a student
that follows the teacher and a student that follows the labels disagree on every image: which one
the distilled student became is then unambiguous.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emolens.config import DistillConfig, load_config
from emolens.data.base import FaceDataset, Split
from emolens.errors import CheckpointError, ConfigError
from emolens.train.distill import Distiller, Teacher, distill_loss
from emolens.train.export import export_onnx
from emolens.train.trainer import Trainer

from .helpers import kill_at_epoch, read_history, tiny_config
from .synthetic import make_dataset

CPU = torch.device("cpu")


def _cfg(out: Path, **kw):
    return tiny_config(out, **{"epochs": 6, "augment.erase": 0.0, **kw})


def _shifted(ds: FaceDataset) -> FaceDataset:
    """The same images with every label moved to the next class."""
    k = len(ds.labels)
    return FaceDataset(ds.name, ds.labels, {name: Split(name, s.images, (s.labels + 1) % k)
                                            for name, s in ds.splits.items()})


def _with_votes(ds: FaceDataset) -> FaceDataset:
    """Soft FER+-like targets: 70% on the label, the rest spread over the other classes."""
    k = len(ds.labels)

    def votes(labels: np.ndarray) -> np.ndarray:
        t = np.full((len(labels), k), 0.3 / (k - 1), dtype=np.float32)
        t[np.arange(len(labels)), labels] = 0.7
        return t

    return FaceDataset(ds.name, ds.labels, {name: Split(name, s.images, s.labels, votes(s.labels))
                                            for name, s in ds.splits.items()})


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint that learned the shifted labels (class k -> k+1) well."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    res = Trainer(_cfg(run, epochs=8), _shifted(make_dataset()), progress=False).fit()
    assert res.best_val_acc > 0.8
    return run / "best.pt"


def _predictions(trainer: Trainer) -> np.ndarray:
    return trainer.evaluate_split(trainer.val)[2].argmax(1).numpy()


@pytest.mark.parametrize("label_mode", ["majority", "soft"])
def test_student_follows_the_teacher_not_the_labels(teacher: Path, tmp_path: Path, label_mode: str):
    ds = make_dataset() if label_mode == "majority" else _with_votes(make_dataset())
    true = ds.split("val").labels
    extra = {"data.label_mode": label_mode, "distill.teacher": str(teacher), "distill.temperature": 2.0}
    plain = Trainer(_cfg(tmp_path / "plain", **extra, **{"distill.alpha": 0.0}), ds, progress=False)
    plain.fit()
    student = Trainer(_cfg(tmp_path / "student", **extra, **{"distill.alpha": 1.0}), ds, progress=False)
    student.fit()
    teacher_says = (true + 1) % len(ds.labels)
    assert (_predictions(plain) == true).mean() > 0.6  # alpha 0: the labels only
    assert (_predictions(student) == teacher_says).mean() > 0.6  # alpha 1: the teacher only
    saved = load_config(tmp_path / "student" / "config.yaml")
    assert saved.distill == DistillConfig(teacher=str(teacher), alpha=1.0, temperature=2.0)


def test_distill_loss_is_zero_at_the_teacher_and_pulls_towards_it():
    torch.manual_seed(0)
    t = torch.randn(16, 7)
    assert float(distill_loss(t.clone(), t, 4.0)) == pytest.approx(0.0, abs=1e-6)
    s = torch.zeros(16, 7, requires_grad=True)
    opt = torch.optim.SGD([s], lr=10.0)
    losses = []
    for _ in range(200):
        loss = distill_loss(s, t, 2.0)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.05 * losses[0]
    assert torch.equal(s.argmax(1), t.argmax(1))


def test_onnx_teacher_gives_the_checkpoint_logits(teacher: Path, tmp_path: Path):
    onnx_path = tmp_path / "teacher.onnx"
    export_onnx(teacher, onnx_path)
    labels = make_dataset(7, 7, 7).labels
    x = torch.rand(8, 1, 48, 48)
    from_pt = Teacher(teacher, labels, 48, 1, CPU, "fp32")(x)
    from_onnx = Teacher(onnx_path, labels, 48, 1, CPU, "fp32")(x)
    assert from_onnx.shape == (8, 7)
    assert torch.allclose(from_pt, from_onnx, atol=1e-3)


def test_teacher_that_does_not_fit_is_a_config_error(teacher: Path, tmp_path: Path):
    labels = make_dataset(7, 7, 7).labels
    with pytest.raises(ConfigError, match="not found"):
        Teacher(tmp_path / "none.pt", labels, 48, 1, CPU, "fp32")
    with pytest.raises(ConfigError, match="predicts"):
        Teacher(teacher, (*labels[:-1], "contempt"), 48, 1, CPU, "fp32")
    with pytest.raises(ConfigError, match="takes 1x48x48"):
        Teacher(teacher, labels, 64, 1, CPU, "fp32")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"distill\.teacher"):
        Teacher(bad, labels, 48, 1, CPU, "fp32")
    for key, value in (("alpha", 1.5), ("temperature", 0.0)):
        with pytest.raises(ConfigError, match=rf"distill\.{key}"):
            Distiller.from_config(DistillConfig(teacher=str(teacher), **{key: value}), labels, 48, 1, CPU, "fp32")
    assert Distiller.from_config(DistillConfig(), labels, 48, 1, CPU, "fp32") is None



def test_distilled_run_resumes_exactly_and_refuses_a_changed_teacher(teacher: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    ds = make_dataset(n_train=140, n_val=35, n_test=35)
    copy = tmp_path / "teacher.pt"
    copy.write_bytes(teacher.read_bytes())
    kw = {"epochs": 3, "distill.teacher": str(copy)}
    Trainer(_cfg(tmp_path / "full", **kw), ds, progress=False).fit()

    kill_at_epoch(Trainer(_cfg(tmp_path / "killed", **kw), ds, progress=False), 2)
    Trainer(_cfg(tmp_path / "killed", **kw), ds, progress=False).fit(resume=True)
    assert read_history(tmp_path / "killed") == read_history(tmp_path / "full")

    ckpt = torch.load(copy, weights_only=False)  # the teacher file changes under the run
    ckpt["epoch"] += 1
    torch.save(ckpt, copy)
    with pytest.raises(CheckpointError, match="another teacher"):
        Trainer(_cfg(tmp_path / "full", **{**kw, "epochs": 3}), ds, progress=False).fit(resume=True)


def test_train_cli_teacher_option(teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from emolens.cli import main

    from .synthetic import write_fer2013_csv

    monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))
    data = write_fer2013_csv(tmp_path / "fer2013.csv")
    run = tmp_path / "student"
    rc = main(["train", "--data", str(data), "--arch", "tiny", "--epochs", "1", "--batch-size", "16", "--out", str(run),
               "--teacher", str(teacher), "--set", "distill.alpha=0.7", "--no-progress", "--no-evaluate"])
    assert rc == 0
    assert load_config(run / "config.yaml").distill == DistillConfig(str(teacher), 0.7, 4.0)
    assert main(["train", "--data", str(data), "--arch", "tiny", "--out", str(tmp_path / "x"), "--teacher",
                 str(tmp_path / "missing.pt"), "--no-progress"]) == 2  # a clear ConfigError, no traceback


def test_ensemble_teacher_averages_its_members_logits(teacher: Path, tmp_path: Path):
    """``distill.teacher: a, b`` is one teacher whose logits are the members' mean; a changed member changes
    its SHA-256 (so a resumed run refuses it) and an empty entry is a named config error."""
    labels = make_dataset(7, 7, 7).labels
    onnx_path = tmp_path / "teacher.onnx"
    export_onnx(teacher, onnx_path)
    other = tmp_path / "other"
    Trainer(_cfg(other, epochs=2, seed=3), make_dataset(n_train=70, n_val=14, n_test=14), progress=False).fit()
    x = torch.rand(8, 1, 48, 48)
    spec = f"{teacher}, {other / 'best.pt'}"
    dist = Distiller.from_config(DistillConfig(teacher=spec), labels, 48, 1, CPU, "fp32")
    assert dist is not None
    a = Teacher(teacher, labels, 48, 1, CPU, "fp32")(x)
    b = Teacher(other / "best.pt", labels, 48, 1, CPU, "fp32")(x)
    assert not torch.allclose(a, b, atol=1e-2)
    assert torch.allclose(dist.teacher(x), (a + b) / 2, atol=1e-5)
    assert str(other / "best.pt") in str(dist.teacher.path)

    mixed = Distiller.from_config(DistillConfig(teacher=f"{onnx_path},{other / 'best.pt'}"), labels, 48, 1, CPU,
                                  "fp32")
    assert mixed is not None and torch.allclose(mixed.teacher(x), dist.teacher(x), atol=1e-3)
    assert mixed.teacher.sha256 != dist.teacher.sha256
    with pytest.raises(ConfigError, match="empty entry"):
        Distiller.from_config(DistillConfig(teacher=f"{teacher},,{onnx_path}"), labels, 48, 1, CPU, "fp32")
    with pytest.raises(ConfigError, match="not found"):
        Distiller.from_config(DistillConfig(teacher=f"{teacher}, {tmp_path / 'missing.pt'}"), labels, 48, 1, CPU,
                              "fp32")


def test_student_of_an_ensemble_follows_it_and_records_its_hash(teacher: Path, tmp_path: Path):
    ds = make_dataset()
    spec = f"{teacher}, {teacher}"
    student = Trainer(_cfg(tmp_path / "s", **{"distill.teacher": spec, "distill.alpha": 1.0,
                                              "distill.temperature": 2.0}), ds, progress=False)
    student.fit()
    teacher_says = (ds.split("val").labels + 1) % len(ds.labels)
    assert (_predictions(student) == teacher_says).mean() > 0.6
    ckpt = torch.load(tmp_path / "s" / "last.pt", weights_only=False)
    assert ckpt["extra"]["teacher_sha256"] == student.distiller.teacher.sha256
    assert student.distiller.teacher.sha256 != Teacher(teacher, ds.labels, 48, 1, CPU, "fp32").sha256
    assert load_config(tmp_path / "s" / "config.yaml").distill.teacher == spec
