#!/usr/bin/python3
"""Writes assets/golden_cnn_step.ckpt: one anchored training step of a small `cnn`
computed by PyTorch, for tests/test_golden.c (llm.c style). Needs Debian's
python3-torch (run with /usr/bin/python3).

The file uses vkanchor's checkpoint container (magic VKACKPT, version 1, tagged
sections, CRC32; see src/train/checkpoint.h). Sections:
  config            JSON: shapes, hyper-parameters, parameter shapes in model order
  x                 (B, C, H, W) float32 normalized batch
  labels, ref_idx   (B,) int32
  p00 .. pNN        initial parameters in model order (float32)
  run_bn            initial BN running mean/var, all layers, (mean, var) per layer
  for case u (unmasked) and m (masked, --mask-bn-stats skip):
    <c>_logits      (B, classes) of the first forward pass
    <c>_loss        (1,) first loss
    <c>_gNN         gradient of every parameter at the first step
    <c>_losses      (steps,) loss before each of `steps` SGD steps on the same batch
    <c>_params      all parameters after the steps, concatenated in model order
    <c>_bn          BN running mean/var after the steps
"""
import json
import os
import struct
import sys
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import anchored_input, build  # noqa: E402

B, C, H, W, CLASSES, STEPS = 4, 1, 12, 12, 10, 5
LR, MOMENTUM, WD = 0.05, 0.9, 5e-4


def sections_for_case(tag, model0, x, labels, ref_idx, masked):
    model = build("cnn", 2 * C, CLASSES).double()
    model.load_state_dict(model0.state_dict())
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if masked:  # masked batches leave the running statistics untouched (--mask-bn-stats skip)
        for m in bns:
            m.momentum = 0.0
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    inp = anchored_input(x, ref_idx, masked)
    out, losses = {}, []
    for step in range(STEPS):
        opt.zero_grad()
        logits = model(inp)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        if step == 0:
            out[f"{tag}_logits"] = logits.detach()
            out[f"{tag}_loss"] = loss.detach().reshape(1)
            for i, p in enumerate(model.parameters()):
                out[f"{tag}_g{i:02d}"] = p.grad.detach().clone()  # zero_grad() reuses the storage
        losses.append(loss.item())
        opt.step()
    out[f"{tag}_losses"] = torch.tensor(losses)
    out[f"{tag}_params"] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    out[f"{tag}_bn"] = torch.cat([torch.cat([m.running_mean, m.running_var]) for m in bns])
    return out


def main():
    torch.manual_seed(1234)
    model0 = build("cnn", 2 * C, CLASSES).double()
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    labels = torch.tensor([3, 7, 0, 7])
    ref_idx = torch.tensor([2, 0, 2, 3])  # sample 3 draws itself: residual 0
    # Round inputs and weights to float32 first, so both sides start from the same values.
    x = x.float().double()
    with torch.no_grad():
        for p in model0.parameters():
            p.copy_(p.float().double())
    bns = [m for m in model0.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sec = {"x": x, "labels": labels.int(), "ref_idx": ref_idx.int()}
    for i, p in enumerate(model0.parameters()):
        sec[f"p{i:02d}"] = p.detach()
    sec["run_bn"] = torch.cat([torch.cat([m.running_mean, m.running_var]) for m in bns])
    sec.update(sections_for_case("u", model0, x, labels, ref_idx, False))
    sec.update(sections_for_case("m", model0, x, labels, ref_idx, True))
    config = {
        "model": "cnn", "batch": B, "channels": C, "height": H, "width": W, "classes": CLASSES,
        "steps": STEPS, "lr": LR, "momentum": MOMENTUM, "weight_decay": WD, "nesterov": False,
        "param_shapes": [list(p.shape) for p in model0.parameters()],
        "note": "computed in float64 by PyTorch %s; stored as float32" % torch.__version__,
    }
    body = bytearray()
    items = [("config", json.dumps(config).encode() + b"\0")]
    for k, v in sec.items():
        t = v.detach().contiguous()
        data = t.numpy().astype("<i4").tobytes() if t.dtype in (torch.int32, torch.int64) else \
            t.float().numpy().astype("<f4").tobytes()
        items.append((k, data))
    body += b"VKACKPT\0" + struct.pack("<II", 1, len(items))
    for tag, data in items:
        assert len(tag) < 16
        body += tag.encode().ljust(16, b"\0") + struct.pack("<Q", len(data)) + data
    body += struct.pack("<I", zlib.crc32(bytes(body)) & 0xFFFFFFFF)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "golden_cnn_step.ckpt")
    with open(path, "wb") as f:
        f.write(body)
    print(f"gen_golden: wrote {os.path.normpath(path)} ({len(body)} bytes, {len(items)} sections)")


if __name__ == "__main__":
    main()
