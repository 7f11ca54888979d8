"""Does torchao's compiled INT8 dynamic / FP8 run on a BERT classifier with a 10-class head, from a live
module and from a torch.export file, as navigator's torch_ao path prepares it (runtimes/torch.place:
bf16 weights, runtimes/quantize, torch.compile dynamic=False)? A diagnostic, not a timing: one line per
case (ok, or the error), written to OUT/torchao-compile.json.

    PYTHONPATH=. python benchmarks/gpu_torchao_compile.py --out DIR [--layers 2 --width 256]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


CASES = (("int8_dynamic", None, "exported"), ("fp8_dynamic", "per_row", "module"),
         ("fp8_dynamic", "per_row", "exported"), ("int8_dynamic", None, "module"),
         ("fp8_dynamic", "per_tensor", "exported"))


def model(layers: int, width: int) -> object:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=layers, hidden_size=width, num_attention_heads=max(1, width // 64),
                        intermediate_size=4 * width, num_labels=10, vocab_size=1000)
    return BertForSequenceClassification(config).eval()


def main() -> None:
    import torch
    import torchao

    from navigator.runtimes import quantize

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script (FP8 fails there)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=ids).logits

    ids = torch.randint(0, 1000, (64, 128), device=args.device)
    live = Wrapped(model(args.layers, args.width)).to(args.device)
    program = torch.export.export(live, (ids,), dynamic_shapes=({0: torch.export.Dim("batch", max=1024)},))
    torch.export.save(program, str(out / "bert.pt2"))
    rows: list[dict[str, object]] = []
    info = {"gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
            "torchao": torchao.__version__, "layers": args.layers, "width": args.width, "batch": 64, "seq": 128,
            "rows": rows}
    for quant, granularity, source in CASES:  # navigator's route (exported) first: a short call still shows it
        torch._dynamo.reset()
        net = Wrapped(model(args.layers, args.width)).to(args.device) if source == "module" else \
            torch.export.load(str(out / "bert.pt2")).module()
        net = net.to(torch.bfloat16)
        start = time.perf_counter()
        row = {"quant": quant, "granularity": granularity, "source": source}
        try:
            row["quantized_layers"] = quantize.quantize(net, quant, granularity)
            compiled = torch.compile(net, dynamic=False)
            with torch.inference_mode():
                got = compiled(ids)
                if args.device == "cuda":
                    torch.cuda.synchronize()
            row.update(status="ok", shape=list(got.shape), finite=bool(torch.isfinite(got).all()))
        except Exception as exc:  # noqa: BLE001 - the diagnostic records every failure
            row.update(status="failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:400]}")
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
        (out / "torchao-compile.json").write_text(json.dumps(info, indent=1))  # after each case


if __name__ == "__main__":
    main()
