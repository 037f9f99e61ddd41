#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages edgeagent needs to build and
# test. Idempotent: does nothing when everything is present. Needs root (or
# sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev          # libFuzzer and sanitizer runtimes
  python3                           # JSON checks in tests
  curl                              # HTTP client of tests and bench/pull_vs_curl.sh
  libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
  libsqlite3-dev libpcre2-dev libyaml-dev
  chromium                          # headless browser for the chat page test
)
if [ -n "${EA_EXTRA_PACKAGES:-}" ]; then
  # shellcheck disable=SC2206
  packages+=(${EA_EXTRA_PACKAGES})
fi

# Node.js runs the independent references and real clients of the tests
# (tests/node/package.json); use the machine's own node when it has one.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

# A foreign architecture (for cross -dev packages such as libpcre2-dev:arm64).
if [ -n "${EA_FOREIGN_ARCH:-}" ] && ! dpkg --print-foreign-architectures | grep -qx "$EA_FOREIGN_ARCH"; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to add architecture $EA_FOREIGN_ARCH" >&2
    exit 1
  fi
  dpkg --add-architecture "$EA_FOREIGN_ARCH"
  force_update=1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
install_node_packages() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
  if [ -f "$dir/package-lock.json" ] && command -v npm >/dev/null 2>&1 &&
     ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.ea-installed-lock" 2>/dev/null; then
    echo "install-deps: npm ci in tests/node"
    if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
      cp "$dir/package-lock.json" "$dir/node_modules/.ea-installed-lock"
    else
      echo "install-deps: npm ci failed; tests that need Node packages will skip" >&2
    fi
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  install_node_packages
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
"${sudo[@]}" apt-get update -qq  # also picks up a newly added architecture
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_node_packages
