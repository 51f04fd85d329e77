"""A real PostgreSQL (Debian's postgresql-15) for the tests: a cluster of its own in a
temporary directory, on a loopback port, run as the postgres user, stopped by its PID."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = "/usr/lib/postgresql/15/bin"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgreSQL:
    """One cluster with one database and one user, `url` for SQLAlchemy and tooz."""

    def __init__(self, name="cloudpulse"):
        # Its own directory, outside pytest's (owner-only: the postgres user could not
        # enter it), removed by stop().
        self.dir = tempfile.mkdtemp(prefix="cpulse-postgres-")
        self.port = _free_port()
        self.name = name
        self.password = secrets.token_hex(12)
        shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self._as_postgres([os.path.join(BIN, "initdb"), "-D", data, "-U", "postgres",
                           "--auth=trust", "--no-sync", "-E", "UTF8"])
        self.log = os.path.join(self.dir, "postgres.log")
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", os.path.join(BIN, "postgres"), "-D", data,
             "-h", "127.0.0.1", "-p", str(self.port), "-k", self.dir,
             "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while subprocess.run([os.path.join(BIN, "pg_isready"), "-h", "127.0.0.1",
                              "-p", str(self.port)], capture_output=True).returncode != 0:
            assert self.proc.poll() is None, open(self.log).read()
            assert time.monotonic() < deadline, "PostgreSQL did not start"
            time.sleep(0.2)
        self.sql("CREATE USER %s PASSWORD '%s'" % (name, self.password))
        self.sql("CREATE DATABASE %s OWNER %s" % (name, name))

    def _as_postgres(self, argv):
        subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                       capture_output=True)

    def sql(self, statement, database="postgres"):
        return subprocess.run(
            [os.path.join(BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement],
            check=True, capture_output=True, text=True).stdout

    @property
    def url(self):
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (self.name, self.password, self.port,
                                                        self.name)

    def stop(self):
        if self.proc.poll() is None:
            # fast shutdown, to postgres itself: runuser does not pass SIGINT on
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
