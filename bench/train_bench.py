"""Training throughput of the engine: fp32 eager versus bf16 autocast + channels_last, one process.

Usage::

    python -m bench.train_bench                      # resnet18 on packed 128 x 128 raw, device auto
    python -m bench.train_bench --compile --write docs/TRAIN_THROUGHPUT.md

Every configuration runs :meth:`rawcv.train.Trainer.train_step` (host batch -> device copy,
forward, loss, backward, optimizer step: the step ``rawcv train`` runs) on the same in-memory
batches of the chosen input shape, after warm-up steps, with the device synchronised before
each clock reading. The engine turns bf16 autocast and channels_last on only on CUDA, so on a
CPU-only machine the two configurations are the same code and only fp32 eager is reported.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from rawcv.cli.learn import model_arg_pair


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(config_kwargs: dict, *, model: str, model_kwargs: dict, in_chans: int, side: int, batch_size: int,
            num_classes: int, steps: int, warmup: int, device: str) -> dict:
    import torch

    from rawcv.models import create_model
    from rawcv.train import ClassificationTask, TrainConfig, Trainer

    torch.manual_seed(0)
    net = create_model(model, in_chans=in_chans, num_classes=num_classes, **model_kwargs)
    config = TrainConfig(epochs=1, optimizer="sgd", lr=0.01, device=device, progress=False, **config_kwargs)
    trainer = Trainer(net, ClassificationTask(num_classes), train_loader=None, config=config, log=lambda line: None)
    pin = trainer.cuda
    gen = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(4):
        x = torch.rand(batch_size, in_chans, side, side, generator=gen)
        y = torch.randint(0, num_classes, (batch_size,), generator=gen)
        batches.append((x.pin_memory() if pin else x, y.pin_memory() if pin else y))
    trainer._set_train_mode(True)
    for i in range(warmup):
        trainer.train_step(batches[i % len(batches)])
    _sync(trainer.device)
    t0 = time.perf_counter()
    for i in range(steps):
        loss, _, _ = trainer.train_step(batches[i % len(batches)])
    float(loss)                       # waits for the last step
    _sync(trainer.device)
    seconds = time.perf_counter() - t0
    return {"images_per_s": steps * batch_size / seconds, "seconds": seconds, "device": str(trainer.device),
            "amp": trainer.use_amp, "channels_last": trainer.channels_last}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.train_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--model-arg", action="append", type=model_arg_pair, default=[], metavar="KEY=VALUE",
                    help="architecture keyword (default for resnet18: width=16 small_input=false stem_stride=1, "
                         "the configuration of docs/CLASSIFY_RESULTS.md)")
    ap.add_argument("--layout", choices=("packed", "rgb"), default="packed")
    ap.add_argument("--size", type=int, default=128, help="image side in sensor pixels (packed input: half)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="also measure bf16 + channels_last + torch.compile")
    ap.add_argument("--write", metavar="FILE", help="write the table (Markdown) to FILE")
    args = ap.parse_args(argv)

    import torch

    from rawcv.train import resolve_device

    model_kwargs = dict(args.model_arg) if args.model_arg else (
        {"width": 16, "small_input": False, "stem_stride": 1} if args.model == "resnet18" else {})
    in_chans, side = (4, args.size // 2) if args.layout == "packed" else (3, args.size)
    device = resolve_device(args.device)
    configs = [("fp32 eager", {"amp": False, "channels_last": False})]
    if device.type == "cuda":
        configs.append(("bf16 autocast + channels_last", {"amp": True, "channels_last": True}))
        if args.compile:
            configs.append(("bf16 + channels_last + torch.compile", {"amp": True, "channels_last": True,
                                                                    "compile": True}))
    common = dict(model=args.model, model_kwargs=model_kwargs, in_chans=in_chans, side=side,
                  batch_size=args.batch_size, num_classes=6, steps=args.steps, warmup=args.warmup,
                  device=str(device))
    rows = []
    for name, kw in configs:
        r = measure(kw, **common)
        rows.append((name, r))
        print(f"{name}: {r['images_per_s']:.1f} images/s ({args.steps} steps of {args.batch_size} in "
              f"{r['seconds']:.2f} s)", flush=True)
    what = (f"`{args.model}` {model_kwargs}, {args.layout} input {in_chans} x {side} x {side} "
            f"({args.size} x {args.size} raw), batch {args.batch_size}, {args.steps} timed steps after "
            f"{args.warmup} warm-up steps, SGD")
    if device.type == "cuda":
        dev = torch.cuda.get_device_name(device)
    else:
        dev = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    lines = [f"Device: {dev}; torch {torch.__version__}. {what}.", "",
             "| configuration | images / s | vs fp32 eager |", "|---|---:|---:|"]
    base = rows[0][1]["images_per_s"]
    for name, r in rows:
        lines.append(f"| {name} | {r['images_per_s']:.1f} | {r['images_per_s'] / base:.2f}x |")
    if device.type != "cuda":
        lines += ["", "No CUDA device: bf16 autocast + channels_last (CUDA-only in the engine) was **not measured**."]
    text = "\n".join(lines)
    print()
    print(text)
    if args.write:
        Path(args.write).write_text("# Training throughput\n\nWritten by `python -m bench.train_bench"
                                    + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
                                    + "`.\n\n" + text + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
