"""Train a tiny classifier for a few steps, then let navigator find the fastest correct way to serve it.

    python docs/examples/train_and_optimize.py --budget 2m --out navigator-out/tiny

What it shows: `navigator.optimize` with a DataLoader, a user metric (held-out accuracy, evaluated on the
source and on every trial's runner), a progress callback, and the Result: the winner, its Runner usable right here, the
Triton repository and the reports.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import navigator


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def data(n: int, seed: int) -> TensorDataset:
    """Four Gaussian blobs in 16 dimensions: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    centres = torch.randn(4, 16, generator=torch.Generator().manual_seed(0)) * 2
    return TensorDataset(centres[labels] + torch.randn(n, 16, generator=g), labels)


def train(model: nn.Module, loader: DataLoader, steps: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.tensor(0.0)
    batches = iter(loader)
    for _ in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="2m")
    parser.add_argument("--out", default="navigator-out/tiny")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--window", type=float, default=0.25, help="benchmark window in seconds")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = Tiny()
    loader = DataLoader(data(2048, seed=1), batch_size=32, shuffle=True)
    print(f"trained {args.steps} steps, last loss {train(model, loader, args.steps):.3f}")
    model.eval()

    held_out = data(512, seed=2)
    x_eval, y_eval = held_out.tensors[0].numpy(), held_out.tensors[1].numpy()

    def accuracy(runner) -> float:
        """Held-out accuracy of any runner: NumPy batches in, logits out."""
        hits = 0
        for i in range(0, len(x_eval), 32):
            logits = runner({"x": x_eval[i:i + 32]})[0]
            hits += int((logits.argmax(axis=1) == y_eval[i:i + 32]).sum())
        return hits / len(x_eval)

    def on_progress(event: navigator.ProgressEvent) -> None:
        best = f"{event.best_value:.1f}/s" if event.best_value else "-"
        print(f"trial {event.outcome.config.number:3d} {event.outcome.config.path:12s} {event.outcome.status:9s}"
              f" best {best}  ({event.elapsed_s:.0f}s of {event.budget_s:.0f}s)")

    result = navigator.optimize(model, dataloader=loader, budget=args.budget, out=args.out, metric=accuracy,
                                callbacks=[on_progress], progress=not args.no_progress, window_s=args.window,
                                force=True)
    best = result.best
    assert best is not None and best.bench is not None, "no trial passed validation"
    print(f"winner: trial {best.config.number} {best.config.path}: {best.bench.throughput:.1f} inferences/s")

    runner = navigator.load_runner(result)  # the winner, loaded in this process
    with torch.inference_mode():
        expected = model(torch.from_numpy(x_eval[:32])).numpy()
    got = runner({"x": x_eval[:32]})[0]
    print(f"runner matches the trained model: max abs diff {np.abs(got - expected).max():.2e}")
    print(f"held-out accuracy of the winner: {accuracy(runner):.3f}")
    print(f"triton repository: {result.repository}")
    for kind, path in result.reports.items():
        print(f"report ({kind}): {path}")


if __name__ == "__main__":
    main()
