#!/usr/bin/env bash
# The cross-device benchmark: `vkanchor bench` on every Vulkan device present
# (lavapipe included) and, where Python with torch is installed, the same
# anchored training step in PyTorch on the CPU (same thread count) and on each
# CUDA GPU, interleaved in one run. Prints one table and writes the JSON.
#   bash scripts/bench-devices.sh [--models "cnn resnet20 resnet18"] [--steps N] [--rounds N] [--out FILE]
# --rounds N repeats every measurement N times, vkanchor and PyTorch alternating, and the
# table takes the best of each (a shared machine's load only ever slows a run down).
set -euo pipefail
cd "$(dirname "$0")/.."
models="cnn resnet20 resnet18"
steps=10
rounds=1
out="bench/results-$(date +%Y%m%d-%H%M%S).json"
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2
      case "$rounds" in ''|*[!0-9]*|0) echo "bench-devices: --rounds wants a whole number >= 1, not '$rounds'" >&2; exit 2 ;; esac ;;
    --out) out="$2"; shift 2 ;;
    *) echo "bench-devices: unknown argument $1" >&2; exit 2 ;;
  esac
done
exe="${VKANCHOR_EXE:-build/vkanchor}"
[ -x "$exe" ] || bash scripts/setup.sh >&2
python=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c "import torch" 2>/dev/null; then python="$p"; break; fi
done
[ -n "$python" ] || echo "bench-devices: no PyTorch here (python3 -c 'import torch' failed): vkanchor alone, no ratios;" \
  "for the side-by-side figures: apt-get install python3-torch (or any CUDA/ROCm PyTorch)" >&2
threads=$(nproc)
mkdir -p "$(dirname "$out")"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
ndev=$("$exe" devices --json | grep -c '"index"')
ncuda=0
[ -n "$python" ] && ncuda=$("$python" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
for m in $models; do
 for ((round = 1; round <= rounds; round++)); do
  for ((i = 0; i < ndev; i++)); do
    echo "bench-devices: vkanchor $m on device $i" >&2
    # Each line: where it ran (a key that tells identical devices apart), a tab, the JSON.
    { printf 'vulkan:%s\t' "$i"; "$exe" bench --model "$m" --steps "$steps" --device "$i" --json | tr -d '\n\t'; echo; } >> "$tmp"
  done
  if [ -n "$python" ]; then
    echo "bench-devices: pytorch $m on cpu ($threads threads)" >&2
    { printf 'torch:cpu\t'; "$python" scripts/bench_torch.py --model "$m" --steps "$steps" --device cpu --threads "$threads"; } >> "$tmp"
    for ((g = 0; g < ncuda; g++)); do
      echo "bench-devices: pytorch $m on cuda:$g" >&2
      { printf 'torch:cuda:%s\t' "$g"; "$python" scripts/bench_torch.py --model "$m" --steps "$steps" --device "cuda:$g"; } >> "$tmp"
    done
  fi
 done
done
# One table: vkanchor rows with the ratio to PyTorch on the same kind of hardware
# (CPU devices vs PyTorch CPU; GPUs vs PyTorch CUDA on the GPU of the same name).
"${python:-python3}" - "$tmp" "$out" <<'PY'
import json, sys
runs = []
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    where, text = line.split("\t", 1)
    r = json.loads(text)
    r["ran_on"] = where          # vulkan:<index>, torch:cpu, torch:cuda:<index>
    runs.append(r)
# The best of the rounds for each (where, model); every run is kept in the JSON.
best, count = {}, {}
for r in runs:
    key = (r["ran_on"], r["model"])
    count[key] = count.get(key, 0) + 1
    if key not in best or r["images_per_s"] > best[key]["images_per_s"]:
        best[key] = r
rows = [dict(r, rounds=count[key]) for key, r in best.items()]
def torch_match(r):
    for t in rows:
        if "framework" not in t or t["model"] != r["model"]:
            continue
        if r.get("device_type") == "cpu" and t["device"].startswith("cpu"):
            return t
        if r.get("device_type") != "cpu" and not t["device"].startswith("cpu") and \
           (t["device"].split()[-1] in r["device"] or r["device"] in t["device"]):
            return t
    return None
# conv % of peak: all conv passes' GFLOP/s over the device's FMA peak as vkanchor's probe measured it.
def conv_share(r):
    conv, peak = r.get("conv"), r.get("peak_gflops", 0)
    if not conv or not peak:
        return "-"
    ms = sum(p["ms"] for p in conv.values())
    flop = sum(p["gflops"] * p["ms"] for p in conv.values())   # GFLOP/s x ms = MFLOP
    return "%.0f%%" % (100 * flop / ms / peak) if ms > 0 else "-"
print("%-10s %-44s %12s %12s %8s %11s %11s" % ("model", "device", "images/s", "torch img/s", "ratio",
                                              "peak GFLOP/s", "conv % peak"))
for r in rows:
    if "framework" in r:
        continue
    t = torch_match(r)
    ratio = "%.2fx" % (r["images_per_s"] / t["images_per_s"]) if t else "-"
    print("%-10s %-44s %12.1f %12s %8s %11.0f %11s" % (r["model"], r["device"][:44], r["images_per_s"],
                                           "%.1f" % t["images_per_s"] if t else "-", ratio,
                                           r.get("peak_gflops", 0), conv_share(r)))
for t in rows:
    if "framework" in t:
        print("%-10s %-44s %12.1f %12s %8s" % (t["model"], ("pytorch " + t["device"])[:44], t["images_per_s"], "", ""))
json.dump({"results": rows, "all_runs": runs}, open(sys.argv[2], "w"), indent=1)
print("bench-devices: wrote", sys.argv[2])
PY
