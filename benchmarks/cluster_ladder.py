"""Wall time of a 40-calculation GPAW ladder: in this process (2 side by side) vs 2 ``LadderChunk`` jobs on SLURM.

Needs the single-node SLURM and PostgreSQL of ``scripts/services.sh start`` (root). Both ladders compute the same
40 calculations from scratch (20 rattled 2-atom hcp Be cells × levels 1–2 by default), each in its own project
folder and unit store:

* local: ``PrecisionLadder`` with ``input.cores = 2`` (two single-threaded GPAW workers side by side);
* SLURM: the same with ``job.server.queue`` set, ``job.server.cores = 1`` and ``input.chunk_size = 20``: two chunk
  jobs submitted through pysqa, each running its 20 calculations one after another on one core, while the ladder
  waits in this process and polls every ``--poll`` seconds.

The SLURM time runs from ``job.run()`` to the finished, merged output, so it includes submission, each job's
Python and pyiron start-up and up to one poll interval. pyiron's job table lives in a PostgreSQL table of its own,
dropped at the end.

    python benchmarks/cluster_ladder.py [--structures 20] [--levels 1 2] [--chunks 2] [--poll 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _services_env() -> dict[str, str]:
    status = subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        sys.exit(f"SLURM/PostgreSQL are not running ({status.stdout.strip()}); run scripts/services.sh start first")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "env"], capture_output=True, text=True,
                         check=True).stdout
    env = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def _structures(n: int):
    from ase.build import bulk

    cells = []
    for seed in range(n):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58)
        atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=20, help="number of 2-atom cells")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunks", type=int, default=2, help="SLURM chunks (one core each)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between the master's looks at the queue")
    args = parser.parse_args()

    services = _services_env()
    folder = Path(tempfile.mkdtemp(prefix="cluster_ladder_bench_"))
    table = f"jobs_bench_{uuid.uuid4().hex[:8]}"
    db = {k: v for k, v in services.items() if k.startswith("PYIRON")}
    db.update(PYIRONSQLTABLENAME=table, PYIRONCONNECTIONTIMEOUT="0")
    # pyiron reads its settings and queue configuration when first imported, and importing this package imports
    # pyiron: so the queue configuration is written (by cluster.py loaded on its own) and the environment set first
    spec = importlib.util.spec_from_file_location("_cluster", ROOT / "pyiron_mlip_tradeoff" / "cluster.py")
    cluster = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cluster)
    cluster.write_slurm_queue_config(folder / "resources" / "queues", partition="local", queue="local",
                                     environment=db)
    os.environ.update(db, SLURM_CONF=services["SLURM_CONF"], PYIRONRESOURCEPATHS=str(folder / "resources"),
                      PYIRONPROJECTPATHS=str(folder), PYIRONPROJECTCHECKENABLED="False", PYIRONDISABLE="False",
                      OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", TQDM_DISABLE="1")
    from pyiron_base import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)

    structures = _structures(args.structures)
    n_calc = len(structures) * len(args.levels)
    chunk_size = -(-n_calc // args.chunks)
    print(f"{n_calc} GPAW calculations ({len(structures)} 2-atom cells × levels {args.levels}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    try:
        walls = {}
        for mode in ("local", "slurm"):
            pr = Project(str(folder / mode))
            job = pr.create.job.PrecisionLadder("ladder")
            job.input.structures = structures
            job.input.levels = args.levels
            if mode == "local":
                job.input.cores = 2
            else:
                job.server.queue = "local"
                job.server.cores = 1
                job.input.chunk_size = chunk_size
                job.input.poll_interval = args.poll
            start = time.perf_counter()
            job.run()
            walls[mode] = time.perf_counter() - start
            assert job.status.finished and not job.output.failed.any(), job.output.messages
            detail = f"sum of calculation wall seconds {np.nansum(job.output.seconds):.1f}"
            if mode == "slurm":
                chunk_seconds = [float(pr.load(name).output.seconds) for name in pr.job_table().job
                                 if "_chunk" in name]
                detail += f"; chunk jobs ran {', '.join(f'{s:.1f}' for s in chunk_seconds)} s"
            print(f"{mode:>6}: {walls[mode]:7.1f} s wall ({detail})")
        print(f"SLURM / local wall time: {walls['slurm'] / walls['local']:.2f}")
    finally:
        with cluster.postgres_connection(services) as conn, conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    os._exit(0)  # pyiron's database watchdog thread would keep the interpreter alive for its idle timeout


if __name__ == "__main__":
    main()
