"""Benchmark: reading a FitSNAP set-up with ``read_fitsnap`` vs FitSNAP 3.1.0.4's own JSON scraper, same run.

    python benchmarks/read_fitsnap.py                               # FitSNAP's InP example (1,894 JSON files)
    python benchmarks/read_fitsnap.py path/to/fitsnap-input.in --repeat 5

Both read every JSON file of the input's groups; FitSNAP's ``scrape_configs`` also rotates each configuration into
LAMMPS' frame, ours builds the ``LadderDataset`` (ASE structures, concatenated arrays, unit and sign conversion).
The best of ``--repeat`` wall times of each is printed, with their ratio; the file cache is warmed by one untimed
read first. Run with the shared data present (``../shared/data`` or ``/work/shared/data``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _default_input() -> Path:
    for root in (Path(__file__).resolve().parents[1] / ".." / "shared" / "data", Path("/work/shared/data")):
        path = root / "fitsnap_examples" / "InP_JPCA2020" / "InP-example.in"
        if path.is_file():
            return path.resolve()
    raise SystemExit("no FitSNAP example found: give the input file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = (args.input or _default_input()).resolve()

    from mpi4py import MPI

    from pyiron_mlip_tradeoff._fitsnap_compat import _ensure_strtobool
    from pyiron_mlip_tradeoff.fitsnap_io import read_fitsnap

    _ensure_strtobool()
    from fitsnap3lib.fitsnap import FitSnap

    def ours():
        return read_fitsnap(path).dataset.n_configs

    def fitsnap():
        fs = FitSnap(str(path), comm=MPI.COMM_SELF, arglist=["--overwrite"])
        fs.scrape_configs()
        return len(fs.data)

    ours()  # warm the file cache
    times = {}
    counts = {}
    for name, reader in (("read_fitsnap", ours), ("FitSNAP scrape_configs", fitsnap)):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            counts[name] = reader()
            best = min(best, time.perf_counter() - start)
        times[name] = best
    print(f"input: {path}")
    for name, seconds in times.items():
        print(f"{name:24s} {counts[name]:6d} configurations  {seconds:7.3f} s (best of {args.repeat})")
    print(f"FitSNAP / read_fitsnap time: {times['FitSNAP scrape_configs'] / times['read_fitsnap']:.1f}×")
    assert counts["read_fitsnap"] == counts["FitSNAP scrape_configs"], counts


if __name__ == "__main__":
    main()
