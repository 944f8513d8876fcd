"""The pretrained MNIST classifier behind the "modified inception score".

The EBGAN paper scores samples with the class posterior of "a regular 3-layer ConvNet
trained offline on the whole MNIST training set". This is that network: three
convolutions (5x5, 5x5, 3x3; each with BN, ReLU and 2x2 max-pooling), global average
pooling to 128 features, and one linear layer to the 10 class logits. It reads the GANs' own
format: 1x32x32 images in [-1, 1] (see `harness.data.to_tensor32`), or the same flattened.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from harness.errors import HarnessError

DEFAULT_WEIGHTS = Path(__file__).with_name("mnist_convnet.pt")
DEFAULT_CARD = Path(__file__).with_name("mnist_convnet.json")
FEATURES = 128
ARCHITECTURE = ("1x32x32 in [-1,1] -> conv5x5(1->16)-BN-ReLU-maxpool2 -> conv5x5(16->32)-BN-ReLU-maxpool2 "
                "-> conv3x3(32->128)-BN-ReLU-maxpool2 -> global-avg-pool (128 features) -> linear(128->10)")
FIX = ("pass --classifier PATH (e.g. weights written by python -m classifiers.train --data-dir DIR), "
       "or restore the shipped classifiers/mnist_convnet.pt from the repository")


class ClassifierError(HarnessError):
    """A user-facing problem with the classifier weights: the file, what is wrong with it, and the fix."""


def _block(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    """Conv (same padding) -> BN -> ReLU -> 2x2 max-pool: halves the resolution."""
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]


class ConvNet(nn.Module):
    """A regular 3-layer ConvNet: 1x32x32 -> 16x16x16 -> 32x8x8 -> 128x4x4 -> 128 -> 10.

    The receptive field of the last layer spans the whole 28x28 digit, so global average
    pooling loses little; the 5x5 kernels sit where the channels are few, to stay cheap.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_block(1, 16, 5), *_block(16, 32, 5), *_block(32, FEATURES, 3))
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [N, 128] (for a Frechet distance) of images [N, 1, 32, 32] or [N, 1024]."""
        x = x.reshape(-1, 1, 32, 32)
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [N, 10]."""
        return self.head(self.features(x))


@torch.inference_mode()
def predict_logits(model: ConvNet, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits [N, 10] of many images, in minibatches (faster on a CPU than one big batch)."""
    device = next(model.parameters()).device
    return torch.cat([model(xb.to(device)).cpu() for xb in x.split(batch_size)])


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu") -> ConvNet:
    """The trained ConvNet in eval mode; `path=None` means the committed `DEFAULT_WEIGHTS`."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise ClassifierError(f"classifier weights {path}", "do not exist", FIX)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # pickle, zip, EOF and OS errors all mean "not a readable state dict"
        raise ClassifierError(f"classifier weights {path}", f"cannot be read ({type(e).__name__}), so the "
                              "file is corrupt or not a state dict", FIX) from None
    model = ConvNet().to(device)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[-1].strip() if str(e).strip() else type(e).__name__
        raise ClassifierError(f"classifier weights {path}", f"do not fit this ConvNet ({first})", FIX) from None
    return model.eval()
