#!/usr/bin/env bash
# Puts bpftool 7.5.0, the version the calico-node image ships from v3.30 (calico metadata.mk:
# BPFTOOL_IMAGE=calico/bpftool:v7.5.0), at DIR/bpftool without touching the system's bpftool or apt
# state: Debian bookworm-backports builds it from Linux 6.12 (bpftool 7.5.0+6.12.x). bookworm's own
# bpftool is 7.1, which predates TCX and netkit (bpftool 7.3), so the tests that compare the remote
# transport's TCX and netkit listing with the kernel's need this one.
#
#   tests/tools/get-bpftool75.sh [DIR]     DIR defaults to /var/cache/calicobpf/bpftool-7.5
#
# Prints DIR/bpftool. Idempotent: a DIR/bpftool that already says 7.5 is kept.
set -euo pipefail
DIR=${1:-/var/cache/calicobpf/bpftool-7.5}
if [ -x "$DIR/bpftool" ] && "$DIR/bpftool" version 2>/dev/null | grep -q '^bpftool v7\.5\.'; then
  echo "$DIR/bpftool"; exit 0
fi
mkdir -p "$DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$work/lists"
          -o "Dir::Cache::Archives=$work/archives" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get -qq "${apt_opts[@]}" update >/dev/null
(cd "$work" && apt-get -qq "${apt_opts[@]}" download 'bpftool/bookworm-backports' >/dev/null)
dpkg-deb -x "$work"/bpftool_*.deb "$work/x"
install -m 0755 "$work/x/usr/sbin/bpftool" "$DIR/bpftool"
"$DIR/bpftool" version | grep -q '^bpftool v7\.5\.' || { echo "get-bpftool75.sh: $DIR/bpftool is not bpftool 7.5" >&2; exit 1; }
echo "$DIR/bpftool"
