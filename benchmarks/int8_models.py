"""The two models of benchmarks/int8_cpu.py (and int8_direct.py): random weights, real class margins.

- `resnet18`: torchvision's ResNet-18 layout (BasicBlocks 2-2-2-2, 64..512 channels) in plain PyTorch
  (torchvision is not installed here), PyTorch's default initialisation; images 3x224x224.
- `encoder`: a BERT-like encoder (token and position embeddings, post-LayerNorm blocks of multi-head
  self-attention and a GELU feed-forward, a tanh pooler on the first token, a linear classifier);
  int64 input_ids and attention_mask of 128 tokens, padded sequences of 48-128 tokens.

A random-weight classifier gives near-tie logits, so that top-1 agreement with fp32 would measure the
ties, not the quantization. Here the inputs come from CLASSES synthetic classes (an image class is a
smooth colour template under per-image fields and noise; a text class is a set of topic tokens mixed
with Zipf-distributed common tokens). The ResNet's batch norm statistics are taken from 512 images (as
training leaves them; with the initial ones every image gives nearly the same features) and its
classifier layer alone is fitted on their features; the encoder is trained, every weight, for STEPS
steps on 512 sequences. The fp32 model then tells the classes apart on held-out samples (about 96% and
97%) with margins a trained model would have, not all of them far from a tie, and INT8 disagreeing
with it is a real loss. Everything is seeded: the same files every run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

CLASSES = 10
SEQ = 128
VOCAB = 8000
CLS, SEP, PAD = 1, 2, 0
STEPS, LR = 30, 1e-3  # the encoder's training: its classes separated, not all of its rows far from a tie


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
    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(512, classes)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(image)), 1), 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image))


class EncoderLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + bias
        context = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = self.ln1(x + self.out(context))
        return self.ln2(x + self.fc2(nn.functional.gelu(self.fc1(x))))


class Encoder(nn.Module):
    """4 layers, hidden 256, 4 heads, feed-forward 1024, 128 positions."""

    def __init__(self, layers: int = 4, hidden: int = 256, heads: int = 4, ffn: int = 1024,
                 classes: int = CLASSES) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, hidden)
        self.positions = nn.Embedding(SEQ, hidden)
        self.ln = nn.LayerNorm(hidden)
        self.blocks = nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))
        self.pool = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, classes)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.ln(self.tokens(input_ids) + self.positions(positions))
        # BERT's additive mask: padded keys get a large negative score before the softmax
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for block in self.blocks:
            x = block(x, bias)
        return torch.tanh(self.pool(x[:, 0]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids, attention_mask))


def images(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """n images of the CLASSES image classes (a class: a smooth colour template; each image adds its own
    smooth field and pixel noise, ImageNet-normalised scale) and their classes."""
    templates = np.random.default_rng(1000).standard_normal((CLASSES, 3, 7, 7)).astype(np.float32)
    r = np.random.default_rng(seed)
    labels = r.integers(0, CLASSES, n)
    low = templates[labels] + 0.8 * r.standard_normal((n, 3, 7, 7)).astype(np.float32)
    noise = 0.3 * r.standard_normal((n, 3, 224, 224)).astype(np.float32)
    image = np.kron(low, np.ones((1, 1, 32, 32), np.float32)) + noise
    return {"image": np.ascontiguousarray(image, dtype=np.float32)}, labels


def texts(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """n padded token sequences of the CLASSES text classes (half of a sequence's tokens from its class's
    64 topic tokens, the rest Zipf-distributed over the vocabulary; [CLS] first, [SEP] last, 48-128
    tokens) with their attention masks, and their classes."""
    topics = np.random.default_rng(2000).choice(np.arange(3, VOCAB), (CLASSES, 64), replace=False)
    r = np.random.default_rng(seed)
    labels = r.integers(0, CLASSES, n)
    ids = np.full((n, SEQ), PAD, np.int64)
    mask = np.zeros((n, SEQ), np.int64)
    for i, label in enumerate(labels):
        length = int(r.integers(48, SEQ + 1))
        common = np.minimum(r.zipf(1.3, length - 2) + 2, VOCAB - 1)
        topical = r.choice(topics[label], length - 2)
        ids[i, 1:length - 1] = np.where(r.random(length - 2) < 0.5, topical, common)
        ids[i, 0], ids[i, length - 1] = CLS, SEP
        mask[i, :length] = 1
    return {"input_ids": ids, "attention_mask": mask}, labels


def fit_head(model: nn.Module, data: dict[str, np.ndarray], labels: np.ndarray, steps: int = 300) -> float:
    """Train the model's classifier layer (`head`) alone on the frozen body's features of `data`; returns
    the training accuracy."""
    with torch.no_grad():
        raw = torch.cat([model.features(*(torch.from_numpy(v[i:i + 64]) for v in data.values()))  # type: ignore[operator]
                         for i in range(0, len(labels), 64)])
    # Centred and scaled by ONE number, not per feature: a per-feature scale would let the head lean on
    # features that barely vary, whose differences no 8-bit activation resolves (nor would a trained model
    # put its classes there); the centring and scale are folded into the head's weights below.
    mean, std = raw.mean(0), raw.std() + 1e-6
    feats = (raw - mean) / std
    layer = nn.Linear(feats.shape[1], CLASSES)
    target = torch.from_numpy(labels)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.05, weight_decay=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(layer(feats), target).backward()
        optimizer.step()
    with torch.no_grad():
        head: nn.Linear = model.head  # type: ignore[assignment]
        head.weight.copy_(layer.weight / std)
        head.bias.copy_(layer.bias - (layer.weight / std) @ mean)
        return float((layer(feats).argmax(1) == target).float().mean())


def train(model: nn.Module, data: dict[str, np.ndarray], labels: np.ndarray, steps: int, lr: float) -> float:
    """A few steps of training of every weight on the synthetic classes (batches of 32, AdamW); returns
    the accuracy on `data` afterwards. The model is left in eval mode."""
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    target = torch.from_numpy(labels)
    model.train()
    for _ in range(steps):
        rows = torch.randint(0, len(labels), (32,), generator=generator)
        optimizer.zero_grad()
        logits = model(*(torch.from_numpy(v)[rows] for v in data.values()))
        nn.functional.cross_entropy(logits, target[rows]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(*(torch.from_numpy(v[i:i + 64]) for v in data.values()))
                            for i in range(0, len(labels), 64)])
    return float((logits.argmax(1) == target).float().mean())


def batch_statistics(model: nn.Module, images: np.ndarray | torch.Tensor, device: str = "cpu") -> None:
    """Batch norm's running statistics from the images (their average over batches of 64, run on `device`
    where the model is), as training would leave them; random weights with the initial statistics (mean 0,
    variance 1) give every image nearly the same features. The model is left in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), 64):
            model(torch.as_tensor(images[i:i + 64]).to(device))
    model.eval()


def build(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...], float]:
    """The model in eval mode (fitted or trained on 512 samples of seed 10, see the module's text), example
    inputs for torch.export, and its accuracy on those 512 samples."""
    torch.manual_seed(0)
    if name == "resnet18":
        model: nn.Module = ResNet18()
        data, labels = images(512, 10)
        batch_statistics(model, data["image"])
        accuracy = fit_head(model, data, labels)
    else:
        model = Encoder()
        data, labels = texts(512, 10)
        accuracy = train(model, data, labels, STEPS, LR)
    example = tuple(torch.from_numpy(v[:4]) for v in data.values())
    return model, example, accuracy


def inputs(name: str, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """n inputs of the model `name` and their synthetic classes."""
    return images(n, seed) if name == "resnet18" else texts(n, seed)
