#!/usr/bin/env bash
# Installs every Debian package that building and testing supra-serve needs.
# Idempotent: packages already present are left alone; apt-get runs only when
# something is missing. Run as root (or with sudo available).
#
#   scripts/install-deps.sh           build + test dependencies
#   scripts/install-deps.sh --tools   also the Python packages that tools/ needs
#                                     (Debian's python3-numpy, python3-torch, sentencepiece)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libabsl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libsentencepiece-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libcpp-httplib-dev
  openssl
)
if [[ ${1:-} == --tools ]]; then
  packages+=(python3 python3-numpy python3-torch python3-sentencepiece sentencepiece)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
