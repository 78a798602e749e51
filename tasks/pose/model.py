"""Top-down heatmap networks: a small CPU one for the built-in stick figures, SimpleBaseline's
ResNet-50 for real COCO on a GPU. Both output (N, 17, H / 4, W / 4) heatmaps."""

from __future__ import annotations

import torch
from torch import nn

from gp_loss.core.errors import GpLossError

MODELS = ("small", "simplebaseline_resnet50")


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _deconv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallPoseNet(nn.Module):
    """An encoder to 1/8 of the input and one deconvolution back to 1/4, as SimpleBaseline's
    head is (deconvolutions, then a 1 x 1 convolution per keypoint), at CPU scale."""

    def __init__(self, keypoints: int = 17, width: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            *_conv(3, width, 2),
            *_conv(width, 2 * width, 2),
            *_conv(2 * width, 2 * width),
            *_conv(2 * width, 4 * width, 2),
        )
        self.decoder = nn.Sequential(*_deconv(4 * width, 2 * width), *_conv(2 * width, 2 * width))
        self.final = nn.Conv2d(2 * width, keypoints, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.final(self.decoder(self.encoder(images)))


class SimpleBaseline(nn.Module):
    """SimpleBaseline (Xiao et al. 2018): a ResNet-50 trunk, three 4 x 4 deconvolutions of 256
    channels, a 1 x 1 convolution per keypoint."""

    def __init__(self, keypoints: int = 17, trunk_state: dict | None = None) -> None:
        super().__init__()
        from torchvision.models import resnet50

        trunk = resnet50(weights=None)
        if trunk_state is not None:  # a local ImageNet ResNet-50
            trunk.load_state_dict(trunk_state)
        self.encoder = nn.Sequential(*list(trunk.children())[:-2])
        self.decoder = nn.Sequential(*_deconv(2048, 256), *_deconv(256, 256), *_deconv(256, 256))
        self.final = nn.Conv2d(256, keypoints, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.final(self.decoder(self.encoder(images)))


def build_pose_model(name: str, weights: str | None = None) -> nn.Module:
    """The network ``name``; ``weights``: a local state dict of the whole network or, for
    ``simplebaseline_resnet50``, of an ImageNet ResNet-50 (its trunk). Nothing is downloaded."""
    state = torch.load(weights, map_location="cpu", weights_only=True) if weights else None
    if name == "small":
        model: nn.Module = SmallPoseNet()
    elif name == "simplebaseline_resnet50":
        imagenet = state is not None and "fc.weight" in state
        model = SimpleBaseline(trunk_state=state if imagenet else None)
        if imagenet:
            return model
    else:
        raise GpLossError(f"unknown pose model {name!r}; known: {', '.join(MODELS)}")
    if state is not None:
        model.load_state_dict(state)
    return model
