#!/usr/bin/env bash
# The Debian packages the demo and the tests use on the host, installed when missing (a machine with
# only the .NET SDK has none of them): mount, umount, unshare and setpriv from util-linux, ip and tc
# from iproute2, clang to build the tests' tc program, bpftool for the node-command transport. Then
# bpftool 7.5 as calico-node ships it from v3.30 (bookworm's is 7.1, which lists no TCX or netkit
# attachment), in a directory of its own: the system's bpftool stays what it is.
# Run by build.ps1 (demo, readme, test) and .ci/run; needs root and apt-get to install anything.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing host tools: ${need[*]} (Debian packages). Install them as root, or run as root on Debian/Ubuntu so that build.ps1 installs them." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

tests/tools/get-bpftool75.sh >/dev/null
