"""The local store starts from a checkout in any folder (issue 27).

As root, the PostgreSQL under FerretDB runs as the `postgres` system user, which cannot enter a
mode-700 folder such as root's home or a `mktemp -d` folder. The scripts must then keep
everything that user writes (data, server log, socket) where it can, and `make clean` must
remove exactly that. This test clones the repository into a fresh mode-700 folder, starts the
store there on other ports than the suite's, writes and reads a document, and cleans up.

The clone borrows this checkout's built FerretDB (`.tools`) and virtualenv (`.venv`) through
links, so the test takes seconds rather than a Go build; the scripts under test are the working
tree's `infra/local/*.sh` and `Makefile` (copied over the clone's, so uncommitted changes are what
is tested).
"""
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pymongo
import pytest

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, cwd, env, timeout=180):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, args))} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.stdout + proc.stderr


@pytest.fixture
def private_clone():
    if not (ROOT / ".tools" / "bin" / "ferretdb").exists():
        pytest.fail("FerretDB is not built in this checkout (.tools/bin/ferretdb): run make infra")
    parent = Path(tempfile.mkdtemp(prefix="lianchen-700-"))  # mkdtemp makes it mode 700
    assert parent.stat().st_mode & 0o777 == 0o700
    clone = parent / "lianchen"
    try:
        run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], cwd=parent,
            env=os.environ.copy())
        for script in (ROOT / "infra" / "local").glob("*.sh"):
            shutil.copy2(script, clone / "infra" / "local" / script.name)
        shutil.copy2(ROOT / "Makefile", clone / "Makefile")
        (clone / ".tools").symlink_to(ROOT / ".tools")
        (clone / ".venv").symlink_to(ROOT / ".venv")
        # venv.sh reinstalls when pyproject.toml is newer than the borrowed venv's stamp: it
        # must not repoint this checkout's editable install at the clone.
        os.utime(clone / "pyproject.toml", (0, 0))
        yield clone
    finally:
        env = _clean_env()
        subprocess.run(["make", "clean"], cwd=clone, env=env, capture_output=True, timeout=120)
        shutil.rmtree(parent, ignore_errors=True)


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("AMQP_URI", "MONGO_URI", "RABBIT_MGMT_URL", "PG_PORT", "FERRETDB_PORT",
                        "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_store_starts_and_cleans_up_from_a_mode_700_folder(private_clone):
    clone = private_clone
    pg_port, mongo_port = free_port(), free_port()
    env = _clean_env(PG_PORT=pg_port, FERRETDB_PORT=mongo_port, FERRETDB_BACKEND="postgresql")

    out = run(["bash", "infra/local/ferretdb.sh", "start"], cwd=clone, env=env)
    assert f"127.0.0.1:{mongo_port}" in out, out

    cluster = Path((clone / "var" / "run" / "postgres.dir").read_text().strip())
    if AS_ROOT:
        # the postgres user cannot enter the mode-700 parent: the cluster lives outside it,
        # and the script says where
        assert str(cluster).startswith("/var/tmp/lianchen-postgres/"), cluster
        assert str(cluster) in out, out
        assert (cluster / "postgres.log").exists()
        assert (clone / "var" / "log" / "postgres.log").resolve() == cluster / "postgres.log"
    else:
        assert cluster == clone / "var" / "postgres", cluster

    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{mongo_port}/",
                                 serverSelectionTimeoutMS=10000)
    try:
        client.anywhere_check.docs.insert_one({"_id": "probe", "ok": True})
        assert client.anywhere_check.docs.find_one({"_id": "probe"})["ok"] is True
    finally:
        client.close()

    out = run(["make", "clean"], cwd=clone, env=env)
    assert not (clone / "var").exists(), out
    assert not cluster.exists(), f"{cluster} left behind by make clean:\n{out}"
    for port in (pg_port, mongo_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after make clean"
