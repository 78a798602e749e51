"""The export bundle: round trips for one-slot and multi-slot losses, torch.export with dynamic
sizes, and verify catching an edited loss.py, an edited test vector and a loss that is not finite
somewhere in its domain."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import pytest
import torch

from gp_loss import load_loss, verify, write_bundle
from gp_loss.core.baselines import get_baseline
from gp_loss.export.bundle import MANIFEST, sha256
from gp_loss.export.formats import export
from gp_loss.trees.best_json import BestLoss, SlotLoss
from tests.test_cli import call_cli

CE = get_baseline("cross_entropy").tree
ONE = BestLoss(
    "seg_voc",
    "mIoU",
    0.7,
    {"seg": SlotLoss(f"add({CE}, maxpool3(square(add(y_hat, neg(y)))))", "softmax_onehot")},
)
TWO = BestLoss(
    "det_coco",
    "AP",
    0.4,
    {"cls": SlotLoss(CE, "softmax_onehot"), "reg": SlotLoss(get_baseline("giou").tree, "box_iou_areas")},
)


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory):
    return write_bundle(ONE, tmp_path_factory.mktemp("one") / "bundle")


@pytest.fixture(scope="module")
def two_slots(tmp_path_factory):
    return write_bundle(TWO, tmp_path_factory.mktemp("two") / "bundle")


def _rows(result, status):
    return {(r["check"], r["slot"]) for r in result.rows if r["status"] == status}


def test_one_slot_bundle_round_trips_and_verifies(one_slot):
    for name in (
        "best.json",
        "loss.py",
        "loss.pt",
        "loss.pt2",
        "test_vectors.pt",
        "MODEL_CARD.md",
        "loss_curve.png",
    ):
        assert (one_slot / name).is_file(), name
    text = (one_slot / "loss.py").read_text()
    assert "Use:  from loss import Loss; loss = Loss()" in text and "value = loss(logits, labels)" in text
    assert "class Loss(" in text and "SearchedLosses" not in text  # one name to import
    card = (one_slot / "MODEL_CARD.md").read_text()
    assert "in words: " in card and "maxpool" not in card.split("in words:")[1].split("\n")[0]
    assert "torch" in card and "Not measured" in card
    result = verify(one_slot)
    assert result.passed, result.markdown()
    assert ("gradcheck float64 (loss.py)", "seg") in _rows(result, "pass")
    assert ("edge cases loss.pt2", "seg") in _rows(result, "pass")


def test_exported_program_takes_any_batch_class_and_spatial_size(one_slot):
    program = torch.export.load(str(one_slot / "loss.pt2")).module()
    reference = load_loss(ONE)
    for shape in ((1, 3, 5, 7), (6, 11, 9, 4)):
        logits = torch.randn(shape)
        labels = torch.randint(0, shape[1], (shape[0], *shape[2:]))
        assert torch.allclose(program(logits, labels), reference(logits, labels), atol=1e-6)


def test_loss_py_needs_only_torch_in_a_fresh_isolated_process(one_slot):
    script = (
        "import sys, torch; sys.path.insert(0, '.'); from loss import Loss; "
        "torch.manual_seed(0); x = torch.randn(2, 4, 6, 6); y = torch.randint(0, 4, (2, 6, 6)); print(float(Loss()(x, y)))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=one_slot, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    torch.manual_seed(0)
    x, y = torch.randn(2, 4, 6, 6), torch.randint(0, 4, (2, 6, 6))
    assert abs(float(done.stdout) - float(load_loss(ONE)(x, y))) < 1e-6


def test_multi_slot_bundle_round_trips_and_verifies(two_slots):
    text = (two_slots / "loss.py").read_text()
    assert "from loss import build_losses" in text and "def forward(" in text.split("class SearchedLosses")[1]
    result = verify(two_slots)
    assert result.passed, result.markdown()
    assert {("values loss.pt2", "cls"), ("values loss.pt2", "reg")} <= _rows(result, "pass")
    program = torch.export.load(str(two_slots / "loss.pt2")).module()
    logits, labels = torch.randn(7, 11), torch.randint(0, 11, (7,))
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 5.0]])
    cls, reg = program(logits, labels, boxes, boxes + 0.5)
    losses = load_loss(TWO)
    assert torch.allclose(cls, losses["cls"](logits, labels)) and torch.allclose(
        reg, losses["reg"](boxes, boxes + 0.5)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(two_slots / "loss.pt"))
    assert torch.allclose(scripted.reg(boxes, boxes + 0.5), reg)


def _copy(bundle, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(bundle, target)
    return target


@pytest.mark.slow
def test_verify_catches_an_edited_loss_py(one_slot, tmp_path):
    bundle = _copy(one_slot, tmp_path)
    path = bundle / "loss.py"
    text = path.read_text()
    assert "return valid_mean(out, valid, inputs[0])" in text
    path.write_text(text.replace("return valid_mean(", "return 1.01 * valid_mean("))  # a 1% larger loss
    done = call_cli("verify", str(bundle))
    assert done.returncode == 1
    assert (
        "| manifest loss.py | - | fail |" in done.stdout and "| values loss.py | seg | fail |" in done.stdout
    )


def test_verify_catches_an_edited_test_vector(one_slot, tmp_path):
    bundle = _copy(one_slot, tmp_path)
    vectors = torch.load(bundle / "test_vectors.pt", weights_only=True)
    vectors["slots"]["seg"]["value"] = vectors["slots"]["seg"]["value"] + 1e-3
    torch.save(vectors, bundle / "test_vectors.pt")
    result = verify(bundle)
    assert not result.passed
    assert ("manifest test_vectors.pt", "-") in _rows(result, "fail")
    assert {("values loss.py", "seg"), ("values loss.pt", "seg"), ("values loss.pt2", "seg")} <= _rows(
        result, "fail"
    )


def test_verify_catches_a_loss_that_is_not_finite_somewhere_in_its_domain(one_slot, tmp_path):
    """A consistent bundle (its manifest rehashed) whose loss.py takes an unguarded log: the
    manifest passes; the behaviour checks catch it (a probability of exactly 0, at an ignored
    position or under huge logits, turns the gradient NaN)."""
    bundle = _copy(one_slot, tmp_path)
    path = bundle / "loss.py"
    text = path.read_text()
    unguarded = re.sub(r"torch\.log\(torch\.clamp\((\w+), min=1e-12\)\)", r"torch.log(\1)", text)
    assert unguarded != text
    path.write_text(unguarded)
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["sha256"]["loss.py"] = sha256(path)
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    result = verify(bundle)
    assert not result.passed
    assert ("manifest loss.py", "-") in _rows(result, "pass")
    assert ("edge cases loss.py", "seg") in _rows(result, "fail")
    assert ("edge cases loss.pt", "seg") in _rows(result, "pass")  # the untouched files still hold
    detail = next(r["detail"] for r in result.rows if r["check"] == "edge cases loss.py")
    assert "huge logits" in detail


def test_cli_export_formats_and_bad_targets(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps(ONE.to_json()))
    done = call_cli("export", str(best), "--format", "exported", "-o", str(tmp_path / "loss.pt2"))
    assert done.returncode == 0, done.stderr
    assert torch.export.load(str(tmp_path / "loss.pt2")) is not None
    done = call_cli("export", str(best), "--format", "bundle")
    assert done.returncode == 2 and "needs -o OUT" in done.stderr
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("mine")
    done = call_cli("export", str(best), "--format", "bundle", "-o", str(tmp_path / "busy"))
    assert done.returncode == 2 and "not an empty folder" in done.stderr
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "mine"
    done = call_cli("verify", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and done.stderr.startswith("gp-loss:")
    assert re.findall(r"^class (\w+)", export(ONE, "python"), re.M) == ["Loss"]
