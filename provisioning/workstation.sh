#!/usr/bin/env bash
# Set up a development machine (system packages, .venv with kgate installed) and run something in it.
#   provisioning/workstation.sh demo [kgate demo options]   run the demo
#   provisioning/workstation.sh test [pytest options]       ruff, mypy and the whole test suite
#   provisioning/workstation.sh setup                        only set up
set -euo pipefail
cd "$(dirname "$0")/.."

bash provisioning/system-packages.sh dev

# The venv is made from the system's Python with its site packages visible, exactly as on the Pi
# (python3-picamera2 and python3-apsw come from apt and must be importable from the venv).
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv --system-site-packages .venv
fi
stamp=.venv/.kgate-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

verb=${1:-setup}
[ $# -gt 0 ] && shift
case "$verb" in
  setup) ;;
  demo)  exec .venv/bin/kgate demo "$@" ;;
  test)
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy .
    exec .venv/bin/pytest "$@" ;;
  *) echo "usage: $0 setup|demo|test [args]" >&2; exit 2 ;;
esac
