"""A private PostgreSQL cluster for the tests: Debian's server binaries (`postgresql` 15), a
data directory in a temporary directory, a free loopback port. PostgreSQL refuses to run as
root, so as root (CI, the development machines) everything runs as the `postgres` system user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from compat_helpers import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    def __init__(self) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL server binaries are missing in {BIN}: "
                               "`sudo apt-get install -y postgresql` (`make system-deps` does)")
        self.root = Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(BIN / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                 "-o", f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=on", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str) -> str:
        """A new, empty database; its `storage` URL."""
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, database: str, query: str) -> list[list[str]]:
        """Rows of `query` as text."""
        result = subprocess.run([str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                                 "-AtF", "\t", "-c", query], capture_output=True, text=True, check=True)
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def enable_tls(self) -> Path:
        """Turns TLS on (a certificate for 127.0.0.1 signed by a throw-away authority; plain
        connections still work); returns the authority's PEM file."""
        ca = self.root / "ca.pem"
        if ca.exists():
            return ca

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], capture_output=True, check=True, cwd=self.root)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=hearth-test-ca")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (self.root / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
        for name in ("server.key", "server.crt"):
            os.chmod(self.root / name, 0o600)
            if self.as_postgres:
                shutil.chown(self.root / name, "postgres")
        for setting in (f"ssl_cert_file = '{self.root / 'server.crt'}'", f"ssl_key_file = '{self.root / 'server.key'}'",
                        "ssl = on"):
            self.sql("postgres", f"ALTER SYSTEM SET {setting}")
        self.sql("postgres", "SELECT pg_reload_conf()")
        return ca

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
