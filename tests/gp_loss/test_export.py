"""best.json -> load_loss / python / torchscript / latex."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss

from gp_loss import load_loss
from gp_loss.core.errors import GpLossError
from gp_loss.export.formats import export
from gp_loss.trees.best_json import read_best
from gp_loss.trees.loss_module import TreeLoss

CE = "neg(mul(y, log(y_hat)))"
GIOU = "neg(add(mul(inter, inv(union)), mul(union, inv(enclose))))"
ODD = "sqrt(maxpool3(add(mean_c(exp(neg(mul(y, log(y_hat))))), mean_nhw(inv(add(y_hat, one))))))"


def _write(path, slots, **extra):
    data = {
        "format": "gp-loss/1",
        "task": "cls_digits",
        "metric": "accuracy",
        "fitness": None,
        "slots": slots,
    }
    data.update(extra)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def one_slot(tmp_path):
    return _write(tmp_path / "best.json", {"cls": {"tree": CE, "adapter": "softmax_onehot"}})


@pytest.fixture
def two_slots(tmp_path):
    (tmp_path / "det").mkdir()
    return _write(
        tmp_path / "det" / "best.json",
        {"cls": {"tree": CE, "adapter": "softmax_onehot"}, "reg": {"tree": GIOU, "adapter": "box_iou_areas"}},
        task="det_coco",
    )


@pytest.fixture
def cls_batch():
    torch.manual_seed(0)
    return torch.randn(6, 10), torch.tensor([0, 3, 255, 9, 1, 1])


@pytest.fixture
def box_batch():
    torch.manual_seed(1)
    xy = torch.rand(8, 2) * 10
    pred = torch.cat([xy, xy + 1 + torch.rand(8, 2) * 4], dim=1)
    return pred, pred + 0.3 * torch.randn(8, 4).clamp(-1, 1)


def test_load_loss_one_slot_is_a_module(one_slot, cls_batch):
    loss = load_loss(one_slot)
    assert isinstance(loss, torch.nn.Module) and not isinstance(loss, torch.nn.ModuleDict)
    logits, labels = cls_batch
    assert torch.allclose(
        loss(logits, labels), F.cross_entropy(logits, labels, ignore_index=255) / 10, rtol=1e-5
    )
    assert CE in repr(loss)
    assert load_loss(one_slot.parent) is not None  # a run directory works too


def test_load_loss_several_slots_is_a_module_dict(two_slots, cls_batch, box_batch):
    losses = load_loss(two_slots)
    assert isinstance(losses, torch.nn.ModuleDict) and list(losses) == ["cls", "reg"]
    pred, target = box_batch
    assert torch.allclose(
        losses["reg"](pred, target), generalized_box_iou_loss(pred, target, reduction="mean") - 2
    )


def test_loaded_module_equals_search_module(tmp_path, cls_batch):
    path = _write(tmp_path / "odd.json", {"seg": {"tree": ODD, "adapter": "softmax_onehot"}})
    torch.manual_seed(2)
    logits, labels = torch.randn(2, 4, 5, 5), torch.randint(0, 4, (2, 5, 5))
    labels[0, 0] = 255
    exported = load_loss(path)(logits, labels)
    searched = TreeLoss(ODD, read_best(path).slots["seg"].signature)(logits, labels)
    assert torch.allclose(exported, searched)


def test_python_export_needs_only_torch(tmp_path, two_slots, cls_batch, box_batch):
    out = tmp_path / "found_loss.py"
    export(read_best(two_slots), "python", out)
    text = out.read_text()
    imports = {line.split()[1] for line in text.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"typing", "torch", "torch.nn.functional"}
    logits, labels = cls_batch
    pred, target = box_batch
    torch.save({"logits": logits, "labels": labels, "pred": pred, "target": target}, tmp_path / "batch.pt")
    script = (
        "import sys, torch; sys.path.insert(0, '.'); import found_loss as m; b = torch.load('batch.pt'); "
        "L = m.build_losses(); print(float(L['cls'](b['logits'], b['labels'])), float(L['reg'](b['pred'], b['target'])))"
    )
    # -I: isolated mode, so gp-loss is not importable from the working tree
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cls_value, reg_value = map(float, done.stdout.split())
    losses = load_loss(two_slots)
    assert abs(cls_value - float(losses["cls"](logits, labels))) < 1e-6
    assert abs(reg_value - float(losses["reg"](pred, target))) < 1e-6


def test_torchscript_export_reproduces_values(tmp_path, one_slot, two_slots, cls_batch, box_batch):
    logits, labels = cls_batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        export(read_best(one_slot), "torchscript", tmp_path / "one.pt")
        scripted = torch.jit.load(str(tmp_path / "one.pt"))
        assert torch.allclose(scripted(logits, labels), load_loss(one_slot)(logits, labels))
        export(read_best(two_slots), "torchscript", tmp_path / "two.pt")
        both = torch.jit.load(str(tmp_path / "two.pt"))
    pred, target = box_batch
    assert torch.allclose(both.cls(logits, labels), load_loss(one_slot)(logits, labels))
    assert torch.allclose(both.reg(pred, target), load_loss(two_slots)["reg"](pred, target))


def test_torchscript_of_every_primitive(tmp_path):
    path = _write(tmp_path / "odd.json", {"seg": {"tree": ODD, "adapter": "softmax_onehot"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        export(read_best(path), "torchscript", tmp_path / "odd.pt")
        scripted = torch.jit.load(str(tmp_path / "odd.pt"))
    logits, labels = torch.randn(2, 4, 5, 5), torch.randint(0, 4, (2, 5, 5))
    assert torch.allclose(scripted(logits, labels), load_loss(path)(logits, labels))


def test_latex_is_simplified(two_slots):
    text = export(read_best(two_slots), "latex")
    assert r"- y \log{\left(\hat{y} \right)}" in text
    assert r"- \frac{I}{U} - \frac{U}{E}" in text


def test_untrusted_tree_is_never_evaluated(tmp_path):
    marker = tmp_path / "owned"
    path = _write(
        tmp_path / "evil.json",
        {"cls": {"tree": f"__import__('os').system('touch {marker}')", "adapter": "softmax_onehot"}},
    )
    with pytest.raises(GpLossError):
        load_loss(path)
    assert not marker.exists()


def test_metadata_cannot_inject_code(tmp_path):
    path = _write(
        tmp_path / "b.json",
        {"cls": {"tree": CE, "adapter": "softmax_onehot"}},
        task='x"""\nimport os; os.system("touch owned")\n"""',
    )
    text = export(read_best(path), "python")
    compile(text, "exported", "exec")
    namespace: dict = {}
    exec(compile(text, "exported", "exec"), namespace)
    assert not (tmp_path / "owned").exists()
    assert "Loss" in namespace and "build_losses" not in namespace  # one slot: one name to import


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "malformed JSON"),
        ('{"format": "gp-loss/2", "slots": {}}', "unsupported format"),
        ('{"format": "gp-loss/1", "slots": {}}', "non-empty"),
        (
            '{"format": "gp-loss/1", "slots": {"cls": {"tree": "mul(y)", "adapter": "softmax_onehot"}}}',
            "argument",
        ),
        (
            '{"format": "gp-loss/1", "slots": {"cls": {"tree": "y", "adapter": "sigmoid"}}}',
            r"unknown adapter 'sigmoid'; known: .*If it is your own, import the module that registers it first "
            r"\(--import MODULE, or import it before load_loss\)",
        ),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "best.json"
    path.write_text(content)
    with pytest.raises(GpLossError, match=message) as info:
        read_best(path)
    assert "\n" not in str(info.value)
    with pytest.raises(GpLossError, match="no such file"):
        read_best(tmp_path / "missing.json")


def test_formulas_do_not_cancel_the_safe_inverse_of_a_zero_able_input():
    """inv(0) = 0, so y * inv(y) is an indicator, not 1; positive inputs still cancel."""
    from gp_loss.core.signature import SlotSignature
    from gp_loss.trees.parse import parse_tree
    from gp_loss.trees.symbolic import to_latex, to_text

    seg = SlotSignature("softmax_onehot", spatial=True)
    assert to_text(parse_tree("mul(y, inv(y))", seg)) == "y*safe_inv(y)"
    assert to_text(parse_tree("mul(y_hat, inv(y_hat))", seg)) == "1"
    assert r"\operatorname{inv}\left(y\right)" in to_latex(parse_tree("inv(y)", seg))
