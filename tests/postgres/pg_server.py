"""A throwaway PostgreSQL cluster for the tests marked `postgres`: one implementation used by
.ci/run and by tests/postgres/conftest.py.

    eval "$(python tests/postgres/pg_server.py start /tmp/dwml-pg)"   # prints export lines
    python tests/postgres/pg_server.py stop /tmp/dwml-pg

The cluster listens on a free loopback port only (no Unix socket outside its folder), asks for
a password (a random one per cluster, so the tests can also check a wrong one is refused) and
is owned by the current user, or by `nobody` when we run as root, because postgres refuses to
run as root.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

USER = "dwml"
DBNAME = "dwml"


def find_bindir() -> Path | None:
    """The folder holding initdb/pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<v>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(_as_owner(argv), capture_output=True, text=True, **kw)
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def start(base: Path, port: int | None = None) -> dict[str, str]:
    """initdb + pg_ctl start in `base`; returns the DWML_PG_* settings of the running server."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql")
    base = Path(base)
    data = base / "data"
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "nobody", "nogroup")
        base.chmod(0o700)
    port = port or free_port()
    pwfile = base / "password"
    if not (data / "PG_VERSION").exists():
        pwfile.write_text(secrets.token_hex(12))
        if os.geteuid() == 0:
            shutil.chown(pwfile, "nobody", "nogroup")
        pwfile.chmod(0o600)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
              "-E", "UTF8", "--locale=C", "--no-sync"])
    password = pwfile.read_text().strip()
    env = {**os.environ, "PGPASSWORD": password}
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} -c fsync=off " \
              "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-o", options, "-w",
          "-t", "60", "start"])
    deadline = time.monotonic() + 30
    while True:
        probe = subprocess.run(_as_owner([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER,
                                          "-d", "postgres", "-tAc", "select 1"]), capture_output=True, text=True,
                               env=env)
        if probe.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not accept connections on port {port}: {probe.stderr.strip()}")
        time.sleep(0.3)
    _run([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres", "-tAc",
          f"create database {DBNAME}"], env=env)
    return {"DWML_PG_HOST": "127.0.0.1", "DWML_PG_PORT": str(port), "DWML_PG_USER": USER,
            "DWML_PG_PASSWORD": password, "DWML_PG_DBNAME": DBNAME}


def stop(base: Path) -> None:
    bindir = find_bindir()
    data = Path(base) / "data"
    if bindir is not None and (data / "postmaster.pid").exists():
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, text=True)
    shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print("usage: pg_server.py start|stop FOLDER", file=sys.stderr)
        return 2
    if argv[0] == "stop":
        stop(Path(argv[1]))
        return 0
    try:
        settings = start(Path(argv[1]))
    except RuntimeError as exc:
        print(f"PostgreSQL not started: {exc}", file=sys.stderr)
        return 1
    for key, value in settings.items():
        print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
