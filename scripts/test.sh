#!/usr/bin/env bash
# The test command: installs, builds with warnings as errors, then runs every
# test twice: with the device's own limits and with the Vulkan spec minimums
# (VKANCHOR_LIMITS=min). GPU tests run on lavapipe when there is no GPU; they
# never skip, so a machine without any Vulkan device fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
VKA_WERROR=1 bash scripts/setup.sh
build="${VKA_BUILD_DIR:-build}"

echo "== Vulkan devices"
"$build/vkanchor" devices || { echo "test: no Vulkan device: install mesa-vulkan-drivers" >&2; exit 1; }

echo "== tests, device limits"
(cd "$build" && ctest --output-on-failure --no-tests=error)
echo "== tests, VKANCHOR_LIMITS=min"
(cd "$build" && VKANCHOR_LIMITS=min ctest --output-on-failure --no-tests=error)
