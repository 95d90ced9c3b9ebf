#!/usr/bin/env bash
# Install the Debian / Raspberry Pi OS packages kgate needs. Idempotent: does nothing when all are present.
#   provisioning/system-packages.sh dev      a developer machine or CI (tests, register, PostgreSQL, sshd)
#   provisioning/system-packages.sh device   a gate terminal (Raspberry Pi OS Bookworm)
#   provisioning/system-packages.sh aarch64  optional: the emulated arm64 machine of tests/provisioning/test_aarch64.py
#                                            (not part of dev: CI does not run it; docs/provisioning.md)
#   provisioning/system-packages.sh PROFILE --missing   only print the missing packages, one a line
# The device list is the one `kgate provision` installs (provisioning/device.py runs this script).
set -euo pipefail

profile=${1:-dev}
common=(python3 python3-venv python3-pip fonts-dejavu-core libzbar0)
case "$profile" in
  dev)    packages=("${common[@]}" python3-apsw libsqlite3-0 postgresql openssh-server openssh-client git systemd poppler-utils
                debootstrap systemd-container  # the provisioning tests' nspawn target (tests/provisioning)
                chromium chromium-driver) ;;   # the console's browser tests (tests/register/test_console_browser.py)
  device) packages=("${common[@]}")
          # lgpio and picamera2 come from Raspberry Pi OS's own archive, never from pip; plain Debian
          # has neither (a gate on a PC uses a USB camera through OpenCV and no GPIO).
          for p in python3-lgpio python3-picamera2; do
            if apt-cache show "$p" >/dev/null 2>&1; then packages+=("$p"); fi
          done ;;
  # qemu-user + binfmt run debootstrap's arm64 second stage; qemu-system-arm boots the machine
  aarch64) packages=(debootstrap qemu-user-static binfmt-support qemu-system-arm e2fsprogs openssh-client) ;;
  *) echo "usage: $0 dev|device|aarch64" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${2:-}" = "--missing" ]; then
  [ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}"
  exit 0
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
