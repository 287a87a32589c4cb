#!/usr/bin/env bash
# Installs what vkanchor needs (Debian 12 packages) and builds it into build/.
# Safe to run again: it installs only what is missing and rebuilds incrementally.
#   VKA_BUILD_DIR   build folder (default: build)
#   VKA_WERROR=1    treat compiler warnings as errors (the test command sets it)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake gcc make pkg-config libvulkan-dev libvulkan-volk-dev glslang-tools spirv-tools
          vulkan-validationlayers mesa-vulkan-drivers libcmocka-dev zlib1g-dev libpng-dev libcjson-dev
          dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build="${VKA_BUILD_DIR:-build}"
werror=OFF
[ "${VKA_WERROR:-0}" = 1 ] && werror=ON
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVKA_WERROR="$werror" >/dev/null
cmake --build "$build" -j"$(nproc)"
