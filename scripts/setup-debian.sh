#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing, so `npm test` works on
# a fresh machine: kcat (librdkafka's CLI) as a Kafka client nobody here wrote.
# Runs apt-get as root, or through sudo when available; says what to run otherwise.
set -euo pipefail

needed=()
command -v kcat >/dev/null 2>&1 || needed+=(kcat)
[ ${#needed[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "setup-debian: missing packages: ${needed[*]}; install them with: sudo apt-get install -y ${needed[*]}" >&2
  exit 1
fi
echo "setup-debian: installing ${needed[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >&2
"${as_root[@]}" apt-get install -y -qq "${needed[@]}" >&2
