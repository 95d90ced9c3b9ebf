#!/usr/bin/env bash
# Install the Debian / Raspberry Pi OS packages kgate needs. Idempotent: does nothing when all are present.
#   provisioning/system-packages.sh dev      a developer machine or CI (tests, register, PostgreSQL, sshd)
#   provisioning/system-packages.sh device   a gate terminal (Raspberry Pi OS Bookworm)
set -euo pipefail

profile=${1:-dev}
common=(python3 python3-venv python3-pip fonts-dejavu-core libzbar0)
case "$profile" in
  dev)    packages=("${common[@]}" python3-apsw libsqlite3-0 postgresql openssh-server openssh-client git systemd poppler-utils) ;;
  device) packages=("${common[@]}" python3-lgpio)
          # picamera2 comes from Raspberry Pi OS's own archive, never from pip.
          if apt-cache show python3-picamera2 >/dev/null 2>&1; then packages+=(python3-picamera2); fi ;;
  *) echo "usage: $0 dev|device" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
