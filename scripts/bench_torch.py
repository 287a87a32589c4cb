#!/usr/bin/python3
"""The same anchored training step as `vkanchor bench`, in PyTorch, for side-by-side
numbers: random batch, anchored input [ref, x - ref], forward, cross-entropy,
backward, SGD (momentum 0.9, weight decay 5e-4). Prints one JSON object per run.

usage: bench_torch.py --model cnn --device cpu|cuda[:i] [--batch-size 128] [--steps 10]
                      [--warmup 3] [--threads N] [--channels C] [--size S]"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import anchored_input, build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--channels", type=int, default=0)
    ap.add_argument("--size", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    c = a.channels or (3 if a.model == "resnet18" else 1)
    s = a.size or (32 if a.model == "resnet18" else 28)
    dev = torch.device(a.device)
    model = build(a.model, 2 * c, 10).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch_size, c, s, s, generator=g).to(dev)
    y = torch.randint(0, 10, (a.batch_size,), generator=g).to(dev)

    def step():
        ref_idx = torch.randint(0, a.batch_size, (a.batch_size,), device=dev)
        loss = torch.nn.functional.cross_entropy(model(anchored_input(x, ref_idx, False)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    dt = time.perf_counter() - t0
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (%d threads)" % torch.get_num_threads()
    print(json.dumps({"framework": "pytorch " + torch.__version__, "device": name, "model": a.model,
                      "batch_size": a.batch_size, "input": [2 * c, s, s], "steps": a.steps,
                      "images_per_s": a.steps * a.batch_size / dt, "step_ms": 1e3 * dt / a.steps,
                      "final_loss": float(loss)}))


if __name__ == "__main__":
    main()
