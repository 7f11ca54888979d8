"""ResNet-18 (torchvision's layout: BasicBlocks 2-2-2-2, 64..512 channels), random weights, exported with
a dynamic batch axis, and synthetic validation/calibration images, for reports/int8-cpu.md."""

import numpy as np
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + self.down(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(image)), 1), 1))


def images(n: int, seed: int) -> np.ndarray:
    """Smooth random fields plus noise: no real images on this machine."""
    r = np.random.default_rng(seed)
    low = r.standard_normal((n, 3, 14, 14)).astype(np.float32)
    noise = 0.3 * r.standard_normal((n, 3, 224, 224)).astype(np.float32)
    return np.ascontiguousarray(np.kron(low, np.ones((1, 1, 16, 16), np.float32)) + noise)


if __name__ == "__main__":
    torch.manual_seed(0)
    model = ResNet18().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (torch.randn(4, 3, 224, 224),), dynamic_shapes=({0: batch},))
    torch.export.save(program, "/tmp/int8m/resnet18.pt2")
    np.savez("/tmp/int8m/val.npz", image=images(8, 1))
    np.savez("/tmp/int8m/cal.npz", image=images(64, 2))
