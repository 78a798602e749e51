"""Segmentation networks: a small encoder-decoder (the CPU proxy) and torchvision's DeepLabV3.

Both map a normalised (N, 3, H, W) batch to (N, C, H, W) logits at the input resolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gp_loss.core.errors import GpLossError

MODELS = ("small", "deeplabv3_resnet50")
#: ImageNet statistics, used for every model (DeepLabV3's backbone expects them)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SmallEncoderDecoder(nn.Module):
    """A U-Net-like proxy network: encoder at 1/2, 1/4 and 1/8 resolution, a decoder with skip
    connections back to 1/2, logits upsampled bilinearly to the input size.

    Working at half resolution keeps one proxy training to seconds on a CPU core, while the
    1/8 level gives each pixel a receptive field the size of a whole digit.

    Args:
        num_classes: C output channels.
        width: channels at 1/2 resolution (x2 and x4 deeper).
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_block(3, w, stride=2), _block(w, w))
        self.down1 = nn.Sequential(_block(w, 2 * w, stride=2), _block(2 * w, 2 * w))
        self.down2 = nn.Sequential(_block(2 * w, 4 * w, stride=2), _block(4 * w, 4 * w))
        self.up1 = _block(4 * w + 2 * w, 2 * w)
        self.up0 = _block(2 * w + w, w)
        self.head = nn.Conv2d(w, num_classes, 1)

    #: the layers the decoder proxy trains afresh on the frozen :meth:`encode` features
    decoder_parts = ("head",)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The features the classifier reads: the last decoder block's, at 1/2 resolution."""
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        u1 = F.interpolate(s2, size=s1.shape[-2:], mode="bilinear", align_corners=False)
        u1 = self.up1(torch.cat([u1, s1], dim=1))
        u0 = F.interpolate(u1, size=s0.shape[-2:], mode="bilinear", align_corners=False)
        return self.up0(torch.cat([u0, s0], dim=1))

    def decode(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits from :meth:`encode`'s features, upsampled to ``size`` (``None``: as they are)."""
        return upsample(self.head(features), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x.shape[-2:])


class DeepLabV3(nn.Module):
    """torchvision's ``deeplabv3_resnet50`` returning the ``out`` logits only.

    Built with ``weights=None, weights_backbone=None`` (nothing is downloaded). ``weights_path``
    may name a local state dict: a whole DeepLabV3 (same class count) or an ImageNet ResNet-50
    (loaded into the backbone, its ``fc`` dropped).
    """

    def __init__(self, num_classes: int, weights_path: str | None = None) -> None:
        super().__init__()
        from torchvision.models.segmentation import deeplabv3_resnet50

        self.net = deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
        )
        if weights_path:
            self._load(weights_path)

    def _load(self, path: str) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as err:
            raise GpLossError(f"cannot read weights {path}: {err}") from None
        state = state.get("model", state) if isinstance(state, dict) else state
        try:
            self.net.load_state_dict(state)
            return
        except RuntimeError:
            pass
        backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            self.net.backbone.load_state_dict(backbone, strict=False)
            missing = set(self.net.backbone.state_dict()) - set(backbone)
        except RuntimeError as err:
            raise GpLossError(f"{path} fits neither DeepLabV3 nor a ResNet-50 backbone: {err}") from None
        if missing:
            raise GpLossError(
                f"{path} fits neither DeepLabV3 nor a ResNet-50 backbone ({len(missing)} keys missing)"
            )

    #: the layers the decoder proxy trains afresh on the frozen :meth:`encode` features
    decoder_parts = ("net.classifier.4",)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The features the classifier reads: the DeepLab head's (ASPP, 3x3 convolution) at
        output stride 8."""
        features = self.net.backbone(x)["out"]
        for layer in list(self.net.classifier)[:4]:
            features = layer(features)
        return features

    def decode(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits from :meth:`encode`'s features, upsampled to ``size`` as torchvision does
        (``None``: as they are)."""
        return upsample(self.net.classifier[4](features), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x.shape[-2:])


def upsample(logits: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """``logits`` resized bilinearly to ``size`` (``None``: unchanged)."""
    if size is None or tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_model(name: str, num_classes: int, weights_path: str | None = None) -> nn.Module:
    """The network ``name`` (one of :data:`MODELS`)."""
    if name == "small":
        return SmallEncoderDecoder(num_classes)
    if name == "deeplabv3_resnet50":
        return DeepLabV3(num_classes, weights_path)
    raise GpLossError(f"unknown segmentation model {name!r}; known: {', '.join(MODELS)}")


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float, ImageNet-normalised."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
