#!/usr/bin/env bash
# Packs suanli-agent for a GPU host that lacks Debian's libraries (the lent GPU machines run
# Ubuntu with CUDA): the binary, the shared libraries it needs beyond glibc and libstdc++ (lib/),
# and, for hosts whose glibc is older than Debian 12's, Debian's loader, glibc and libstdc++ too
# (sys/; gpu_vs_nvidia_smi.py falls back to them when the agent does not start directly). Also
# copies gpu_vs_nvidia_smi.py beside them.
#
#   tests/device/pack_agent.sh [BUILD_DIR] OUT_DIR
set -euo pipefail
build=${1:-build}
out=${2:?usage: pack_agent.sh [BUILD_DIR] OUT_DIR}
agent=$build/bin/suanli-agent
[ -x "$agent" ] || { echo "no $agent: build it first (cmake --build $build --target suanli-agent)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/lib" "$out/sys"
cp "$agent" "$out/"
cp "$(dirname "$0")/gpu_vs_nvidia_smi.py" "$out/"
ldd "$agent" | awk '/=> \// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libstdc++.so.*|libgcc_s.so.*) cp -L "$lib" "$out/sys/" ;;
    *) cp -L "$lib" "$out/lib/"; cp -L "$lib" "$out/sys/" ;;
  esac
done
cp -L /lib64/ld-linux-x86-64.so.2 "$out/sys/"
echo "packed $(du -sh "$out" | cut -f1) into $out"
