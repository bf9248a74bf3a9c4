"""A clear, fast error when pyiron's project database (PostgreSQL, MySQL) cannot be reached.

pyiron retries a failed database call every 5 s without limit, so with the server down or misconfigured a job
creation simply hangs. Our job classes call :func:`ensure_database_reachable` before pyiron touches the database:
it opens one connection with a short timeout and raises :class:`DatabaseUnreachableError` naming the server,
database and user (never the password), before any job row, HDF5 file or working directory is written.

A database that goes away while a job runs is not covered here: pyiron then waits for it (retrying) and writes
the job's status once it is back; the ladder's finished calculations are safe in its unit store meanwhile.
"""

from __future__ import annotations

import time

__all__ = ["DatabaseUnreachableError", "ensure_database_reachable"]

#: seconds a successful check is trusted (a grid creates thousands of child jobs)
_CHECK_VALID_S = 10.0
_last_ok: dict[str, float] = {}


class DatabaseUnreachableError(RuntimeError):
    """pyiron's configured project database does not accept a connection."""


def ensure_database_reachable(timeout: float = 5.0) -> None:
    """Connect once to pyiron's configured network database; raise :class:`DatabaseUnreachableError` if it fails.

    Does nothing for SQLite (a local file) or a disabled database. A success is remembered for a few seconds.
    """
    from pyiron_base import state

    config = state.settings.configuration
    sql_type = config.get("sql_type")
    if state.database.database_is_disabled or sql_type not in ("Postgres", "MySQL"):
        return
    url = state.database.sql_connection_string
    now = time.monotonic()
    if now - _last_ok.get(url, -1e9) < _CHECK_VALID_S:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": max(1, int(timeout))})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as err:  # driver errors differ (OperationalError, socket errors); all mean unreachable
        lines = str(getattr(err, "orig", None) or err).strip().splitlines()
        reason = lines[0] if lines else type(err).__name__
        raise DatabaseUnreachableError(
            f"pyiron's {sql_type} database cannot be reached (host {config.get('sql_host')!r}, database "
            f"{config.get('sql_database')!r}, user {config.get('user')!r}): {reason}. "
            "Start the server (for the local test services: scripts/services.sh start) or correct pyiron's "
            "database settings (PYIRONSQHOST, PYIRONSQLDATABASE, PYIRONUSER, PYIRONSQLUSERKEY or ~/.pyiron). "
            "Nothing was written."
        ) from None
    finally:
        engine.dispose()
    _last_ok[url] = now
