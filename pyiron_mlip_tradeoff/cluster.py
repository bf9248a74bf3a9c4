"""Running on a cluster: a pysqa queue configuration for SLURM that pyiron's ``job.server.queue`` can use.

pyiron submits a job to a queue by rendering the jinja template of that queue (pysqa) with the command
``python -m pyiron_base.cli wrapper -p <working directory> -j <job id>``. That command must find the same
Python environment and the same project database as the process that submitted the job;
:func:`write_slurm_queue_config` writes a configuration whose script puts the given environment's ``bin`` first on
``PATH`` and exports the given variables (e.g. pyiron's ``PYIRONSQL*`` settings) before running it.

pyiron reads the first ``queues/queue.yaml`` it finds among its resource paths, so write the configuration into
``<resource path>/queues`` and put that resource path first (``PYIRONRESOURCEPATHS`` or ``RESOURCE_PATHS`` in
``~/.pyiron``).

:func:`postgres_connection` opens the PostgreSQL database that pyiron's settings name (e.g. to drop a project's job
table after a study).

Nothing here imports pyiron.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SLURM_TEMPLATE", "write_slurm_queue_config", "postgres_connection"]

#: jinja template of the SLURM submission script (``{{...}}`` are filled by pysqa, ``@...@`` by us)
SLURM_TEMPLATE = """#!/bin/bash
#SBATCH --job-name={{job_name}}
#SBATCH --chdir={{working_directory}}
#SBATCH --output=slurm-%j.out
#SBATCH --partition=@PARTITION@
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={{cores}}
{%- if run_time_max %}
#SBATCH --time={{ [1, (run_time_max // 60)]|max }}
{%- endif %}
{%- if memory_max %}
#SBATCH --mem={{memory_max}}G
{%- endif %}
{%- if dependency_list %}
#SBATCH --dependency=afterok:{{ dependency_list | join(':') }}
{%- endif %}
export PATH=@BIN@:$PATH
@EXPORTS@
{{command}}
"""


def write_slurm_queue_config(
    directory: str | os.PathLike,
    partition: str = "local",
    queue: str | None = None,
    cores_max: int | None = None,
    run_time_max: int = 7 * 24 * 3600,
    python_prefix: str | os.PathLike | None = None,
    environment: Mapping[str, str] | None = None,
) -> Path:
    """Write ``queue.yaml`` and ``slurm.sh`` for one SLURM partition into ``directory`` (created if needed).

    Args:
        directory: the ``queues`` folder (pyiron looks for ``<resource path>/queues/queue.yaml``).
        partition: SLURM partition the jobs go to.
        queue: pyiron/pysqa queue name (default: the partition name); use it as ``job.server.queue``.
        cores_max: most cores one job may ask for (default: this machine's CPU count).
        run_time_max: longest run time a job may ask for, in seconds.
        python_prefix: Python environment whose ``bin`` the job uses (default: the running one, ``sys.prefix``).
        environment: variables exported in every job script, e.g. pyiron's database settings. They are written
            in plain text into the template (and each job's ``run_queue.sh``): keep passwords in ``~/.pyiron``
            or a credentials file on a shared cluster.

    Returns:
        The ``queue.yaml`` path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    queue = queue or partition
    cores_max = int(cores_max or os.cpu_count() or 1)
    prefix = Path(python_prefix or sys.prefix).resolve()
    exports = "\n".join(f"export {key}={shlex.quote(str(value))}" for key, value in (environment or {}).items())
    script = (SLURM_TEMPLATE.replace("@PARTITION@", partition).replace("@BIN@", shlex.quote(str(prefix / "bin")))
              .replace("@EXPORTS@", exports))
    (directory / "slurm.sh").write_text(script)
    yaml_path = directory / "queue.yaml"
    yaml_path.write_text(
        "queue_type: SLURM\n"
        f"queue_primary: {queue}\n"
        "queues:\n"
        f"  {queue}: {{cores_max: {cores_max}, cores_min: 1, run_time_max: {int(run_time_max)}, script: slurm.sh}}\n"
    )
    return yaml_path


def postgres_connection(settings: Mapping[str, str]):
    """A ``psycopg2`` connection to the PostgreSQL database named by pyiron's settings.

    Args:
        settings: pyiron's environment settings: ``PYIRONSQHOST`` (``host`` or ``host:port``, default port 5432),
            ``PYIRONSQLDATABASE``, ``PYIRONUSER``, ``PYIRONSQLUSERKEY``.

    Used as ``with postgres_connection(settings) as conn, conn.cursor() as cur: …``, the ``with`` commits (or rolls
    back) the transaction; close the connection yourself when done with it.
    """
    import psycopg2

    host, _, port = settings["PYIRONSQHOST"].partition(":")
    return psycopg2.connect(host=host, port=int(port or 5432), dbname=settings["PYIRONSQLDATABASE"],
                            user=settings["PYIRONUSER"], password=settings["PYIRONSQLUSERKEY"])
