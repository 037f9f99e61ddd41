#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages edgeagent needs to build and
# test. Idempotent: does nothing when everything is present. Needs root (or
# sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev          # libFuzzer and sanitizer runtimes
  python3                           # JSON checks in tests
  libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
  libsqlite3-dev libpcre2-dev libyaml-dev
)
if [ -n "${EA_EXTRA_PACKAGES:-}" ]; then
  # shellcheck disable=SC2206
  packages+=(${EA_EXTRA_PACKAGES})
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: missing packages and not root: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
