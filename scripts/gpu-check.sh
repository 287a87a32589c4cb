#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine that has a GPU driver but no
# Vulkan loader, no validation layers, no glslang and no network:
#   - the build comes from elsewhere (build/vkanchor, build/tests, built by
#     scripts/setup.sh on Debian 12), with absolute paths to /work/main, so the
#     checkout is linked there;
#   - .gl/*.deb (libvulkan1) is unpacked into /, .debs/*.deb (validation layers,
#     cmocka, cJSON, libpng) into /tmp/debs and used only for what is missing;
#   - the NVIDIA ICD is named in VK_DRIVER_FILES when the loader finds no driver.
# Then: the devices, the test suite in both limit modes (validation layers on,
# as everywhere), the cross-device benchmark (vkanchor and PyTorch side by
# side), a per-dispatch trace of resnet18 (with --verbose: the cooperative-matrix self-test's
# result), A/B runs of the conv switches (VKANCHOR_COOPMAT=0, VKANCHOR_TILED_BLOCK,
# VKANCHOR_TILED_PREFETCH, VKANCHOR_TILED_VEC4) each with its trace, and a short training run with
# its evaluation. Everything is logged under $OUT (default: gpu-check-out/); the
# spirv-val tests report "Not Run" there (no spirv-tools).
# Carried (git-ignored): .gl/ (apt-get download libvulkan1), .debs/ (apt-get download
# vulkan-validationlayers libcmocka0 libcjson1 libpng16-16), build/vkanchor, build/tests,
# build/CTestTestfile.cmake (strip --strip-debug them to fit), data/fashion-mnist/*.gz.
#   bash scripts/gpu-check.sh      (step timeouts add up to 585 s, within one 600 s device call)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
log="$out/log.txt"
exec > >(tee -a "$log") 2>&1
step() { echo; echo "== $(date +%T) $*"; }

step "environment"
for f in "$root"/.gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/debs /tmp/vkalib
for f in "$root"/.debs/*.deb; do [ -e "$f" ] && dpkg -x "$f" /tmp/debs; done
debs_lib=/tmp/debs/usr/lib/x86_64-linux-gnu
for lib in libcmocka.so.0 libcjson.so.1 libpng16.so.16; do
  ldconfig -p | grep -q "$lib" || { [ -e "$debs_lib/$lib" ] && ln -sf "$debs_lib/$lib" /tmp/vkalib/ && echo "using Debian's $lib"; }
done
[ -e "$debs_lib/libVkLayer_khronos_validation.so" ] && ln -sf "$debs_lib/libVkLayer_khronos_validation.so" /tmp/vkalib/
export LD_LIBRARY_PATH="/tmp/vkalib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d /tmp/debs/usr/share/vulkan/explicit_layer.d ] && export VK_LAYER_PATH=/tmp/debs/usr/share/vulkan/explicit_layer.d
if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  icd=$(ls /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json 2>/dev/null || find / -name 'nvidia_icd*.json' 2>/dev/null | head -1)
  [ -n "$icd" ] && export VK_DRIVER_FILES="$icd" && echo "VK_DRIVER_FILES=$icd"
fi
if [ "$root" != /work/main ]; then mkdir -p /work && ln -sfn "$root" /work/main; fi
cd /work/main
# Fashion-MNIST from data/ where Debian's package is not installed (test_data opens it by name).
[ -d /usr/share/datasets/fashion-mnist ] || export VKANCHOR_DATA=/work/main/data
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" 2>&1
nproc

step "devices"
build/vkanchor devices 2>&1
build/vkanchor devices --json > "$out/devices.json" 2>&1

step "tests, device limits"
(cd build && timeout 120 ctest -j8 --timeout 100 --output-on-failure --no-tests=error) > "$out/tests-limits.txt" 2>&1
echo "ctest rc=$?"; grep -E "tests passed|Failed|\*\*\*" "$out/tests-limits.txt" | head -40

step "cross-device benchmark"
timeout 160 bash scripts/bench-devices.sh --steps 20 --out "$out/bench-devices.json" 2>&1
echo "bench-devices rc=$?"

step "resnet18 per-dispatch trace and kernel table"
timeout 24 build/vkanchor bench --model resnet18 --steps 20 --verbose --trace "$out/trace-resnet18.jsonl" 2>&1 | grep -v "^epoch" | head -80

# Each variant with its per-dispatch trace, so that the block each layer shape runs fastest
# with can be read per layer (trace-resnet18-<variant>.jsonl beside the picked blocks' trace).
for variant in nocoop 4x4 4x8 8x4 8x8 noprefetch scalarshared; do
  case "$variant" in
    nocoop) env="VKANCHOR_COOPMAT=0" ;;
    noprefetch) env="VKANCHOR_TILED_PREFETCH=0" ;;
    scalarshared) env="VKANCHOR_TILED_VEC4=0" ;;
    *) env="VKANCHOR_TILED_BLOCK=$variant" ;;
  esac
  step "A/B: resnet18 with $env"
  env "$env" timeout 18 build/vkanchor bench --model resnet18 --steps 20 \
    --trace "$out/trace-resnet18-$variant.jsonl" 2>&1 | head -12
done

step "training: resnet20, 2 epochs, then eval"
rm -rf /tmp/run-r20
timeout 45 build/vkanchor train --model resnet20 --epochs 2 --out /tmp/run-r20 2>&1 | tr '\r' '\n' | grep -v "^$" | tail -12
timeout 30 build/vkanchor eval --checkpoint /tmp/run-r20/checkpoint.ckpt --report /tmp/run-r20/report.json 2>&1 | tail -30
cp /tmp/run-r20/report.json "$out/eval-report.json" 2>/dev/null
cp /tmp/run-r20/metrics.jsonl "$out/train-metrics.jsonl" 2>/dev/null

step "tests, VKANCHOR_LIMITS=min"
(cd build && VKANCHOR_LIMITS=min timeout 80 ctest -j8 --timeout 70 --output-on-failure --no-tests=error) > "$out/tests-min.txt" 2>&1
echo "ctest rc=$?"; grep -E "tests passed|Failed|\*\*\*" "$out/tests-min.txt" | head -40
step "done"
