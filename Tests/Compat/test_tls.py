"""HTTPS: `hearth serve --tls-cert/--tls-key` speaks TLS 1.2+ and offers HTTP/2 by ALPN.

Certificates are made for each test run with `cryptography` (a dependency of firebase-admin):
a self-signed certificate for 127.0.0.1 that the clients trust explicitly.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from compat_helpers import HOST
from wire_client import WireClient


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hearth test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(hearth_launcher, tmp_path):
    """A server in emulator mode (everything allowed) serving HTTPS only."""
    cert, key = make_certificate(tmp_path)
    # The launcher's health probe speaks plain HTTP; probe by starting without waiting on it.
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True,
                             extra_args=["--tls-cert", str(cert), "--tls-key", str(key)],
                             log_name="tls", probe_scheme="https", ca_file=str(cert))
    return server, cert


def session_for(cert: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cert)
    session.headers["Authorization"] = "Bearer owner"
    return session


def test_https_reads_and_writes(tls_server):
    """PUT and GET over HTTPS, and the negotiated protocol is TLS 1.2 or newer."""
    server, cert = tls_server
    base = f"https://{HOST}:{server.port}"
    http = session_for(cert)
    assert http.put(f"{base}/devices/d1.json", json={"ok": True}).json() == {"ok": True}
    assert http.get(f"{base}/devices.json").json() == {"d1": {"ok": True}}
    context = ssl.create_default_context(cafile=str(cert))
    with context.wrap_socket(__import__("socket").create_connection((HOST, server.port)), server_hostname=HOST) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_1_1_is_refused(tls_server):
    """Clients limited to TLS 1.1 cannot connect."""
    server, cert = tls_server
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(cert))
    # Let this client speak TLS 1.1 (OpenSSL 3 refuses it by default at security level 2),
    # so that what refuses the handshake is the server.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        with context.wrap_socket(__import__("socket").create_connection((HOST, server.port)), server_hostname=HOST):
            pass
    # The server's alert, not a local refusal to offer the version.
    assert "ALERT" in str(refused.value).upper() or "PROTOCOL_VERSION" in str(refused.value).upper(), refused.value


def test_http2_by_alpn(tls_server):
    """curl asking for HTTP/2 gets HTTP/2; asking for HTTP/1.1 gets HTTP/1.1."""
    server, cert = tls_server
    curl = shutil.which("curl")
    assert curl, "curl is needed (the Makefile installs it)"
    url = f"https://{HOST}:{server.port}/x.json"
    for flag, version in (("--http2", "2"), ("--http1.1", "1.1")):
        result = subprocess.run([curl, "-s", "--cacert", str(cert), flag, "-H", "Authorization: Bearer owner",
                                 "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url],
                                capture_output=True, text=True, timeout=30)
        assert result.stdout == f"{version} 200", (flag, result.stdout, result.stderr)


def test_streams_over_https(tls_server):
    """A server-sent event stream works over TLS (HTTP/1.1 here) and sees a write."""
    server, cert = tls_server
    base = f"https://{HOST}:{server.port}"
    http = session_for(cert)
    events: list[str] = []
    response = http.get(f"{base}/feed.json", headers={"Accept": "text/event-stream"}, stream=True, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")

    def read() -> None:
        for line in response.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(line)
            if len(events) >= 2:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=20)
    while not events and datetime.datetime.now() < deadline:
        reader.join(0.05)
    session_for(cert).put(f"{base}/feed/n.json", json=1)
    reader.join(20)
    response.close()
    assert events == ['data: {"path":"/","data":null}', 'data: {"path":"/n","data":1}']


def test_the_realtime_protocol_over_wss(tls_server):
    """The SDKs' WebSocket works over TLS on the same port (ALPN gives it HTTP/1.1)."""
    server, cert = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    realtime = WireClient(server.port, "tls-realtime", ssl_context=context)
    try:
        assert realtime.hello["d"]["d"]["h"] == f"{HOST}:{server.port}"
        assert realtime.listen("/room")["s"] == "ok"
        assert realtime.push()["b"] == {"p": "room", "d": None}
        with session_for(cert) as session:
            response = session.put(f"https://{HOST}:{server.port}/room.json?ns=tls-realtime", json={"n": 1}, timeout=10)
            assert response.status_code == 200
        assert realtime.push()["b"] == {"p": "room", "d": {"n": 1}}
        assert realtime.put("/room/n", 2)["s"] == "ok"
    finally:
        realtime.close()


def test_bad_certificate_files_stop_start_up(hearth_binary, tmp_path):
    """A missing or unreadable certificate is a start-up error that names the file."""
    cert, key = make_certificate(tmp_path)
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    for cert_arg, key_arg, named in ((tmp_path / "missing.pem", key, "missing.pem"), (broken, key, "broken.pem"),
                                     (cert, broken, "broken.pem")):
        result = subprocess.run([str(hearth_binary), "serve", "--host", HOST, "--port", "0", "--data-dir",
                                 str(tmp_path / "data"), "--emulator", "--tls-cert", str(cert_arg), "--tls-key", str(key_arg)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        assert named in result.stdout + result.stderr
    result = subprocess.run([str(hearth_binary), "serve", "--tls-cert", str(cert)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "tls-key" in result.stderr


def test_a_key_that_does_not_fit_the_certificate_stops_start_up(hearth_binary, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert, _ = make_certificate(tmp_path / "a")
    _, other_key = make_certificate(tmp_path / "b")
    result = subprocess.run([str(hearth_binary), "serve", "--host", HOST, "--port", "0", "--data-dir",
                             str(tmp_path / "data"), "--emulator", "--tls-cert", str(cert), "--tls-key", str(other_key)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "does not fit the certificate" in result.stdout + result.stderr


def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents to a new connection (not verified)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection((HOST, port)), server_hostname=HOST) as tls:
        return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_without_dropping_connections(hearth_launcher, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        make_certificate(tmp_path / name)
    shutil.copy(tmp_path / "old" / "cert.pem", live / "cert.pem")
    shutil.copy(tmp_path / "old" / "key.pem", live / "key.pem")
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="reload",
                             extra_args=["--tls-cert", str(live / "cert.pem"), "--tls-key", str(live / "key.pem")],
                             probe_scheme="https", ca_file=str(live / "cert.pem"))
    old_der = ssl.PEM_cert_to_DER_cert((tmp_path / "old" / "cert.pem").read_text())
    new_der = ssl.PEM_cert_to_DER_cert((tmp_path / "new" / "cert.pem").read_text())
    assert served_certificate(server.port) == old_der
    # A keep-alive connection made under the old certificate.
    old_session = session_for(tmp_path / "old" / "cert.pem")
    base = f"https://{HOST}:{server.port}"
    assert old_session.put(f"{base}/r.json", json=1).status_code == 200

    shutil.copy(tmp_path / "new" / "cert.pem", live / "cert.pem")
    shutil.copy(tmp_path / "new" / "key.pem", live / "key.pem")
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while served_certificate(server.port) != new_der and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served_certificate(server.port) == new_der
    assert session_for(tmp_path / "new" / "cert.pem").get(f"{base}/r.json").json() == 1
    # The connection opened before the reload still works.
    assert old_session.put(f"{base}/r.json", json=2).status_code == 200

    # Files that cannot be used: the server keeps the certificate it has, and keeps running.
    (live / "cert.pem").write_text("not a certificate")
    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_log("TLS certificate reload failed")
    assert server.process.poll() is None
    assert served_certificate(server.port) == new_der


def test_a_client_that_never_finishes_its_handshake_is_disconnected(hearth_launcher, tmp_path):
    """Slow clients over TLS: the handshake (and the first request) must come within the
    request timeout, like a request head over plain HTTP."""
    cert, key = make_certificate(tmp_path)
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="tls-slow",
                             extra_args=["--tls-cert", str(cert), "--tls-key", str(key),
                                         "--request-timeout-seconds", "2"],
                             probe_scheme="https", ca_file=str(cert))
    silent = socket.create_connection((HOST, server.port))
    half = socket.create_connection((HOST, server.port))
    half.sendall(b"\x16\x03\x01\x00\xc8\x01")  # the start of a ClientHello, never finished
    started = time.monotonic()
    for connection in (silent, half):
        connection.settimeout(10)
        try:
            assert connection.recv(1024) == b""
        except ConnectionResetError:
            pass
        connection.close()
    assert time.monotonic() - started < 6
    # A client that speaks HTTP in time keeps its connection past the deadline: three requests
    # on one TLS connection, 1.2 s apart (each pause under the 2 s idle timeout, 2.4 s in all).
    context = ssl.create_default_context(cafile=str(cert))
    with context.wrap_socket(socket.create_connection((HOST, server.port)), server_hostname=HOST) as tls:
        tls.settimeout(10)
        for attempt in range(3):
            tls.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer owner\r\n\r\n")
            response = b""
            while not response.endswith(b"\r\n\r\nnull"):
                chunk = tls.recv(65536)
                assert chunk, f"connection closed before response {attempt}: {response!r}"
                response += chunk
            assert response.startswith(b"HTTP/1.1 200"), attempt
            time.sleep(1.2)


def test_an_http2_connection_over_the_connection_limit_gets_503(hearth_launcher, tmp_path):
    cert, key = make_certificate(tmp_path)
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="tls-limit",
                             extra_args=["--tls-cert", str(cert), "--tls-key", str(key), "--max-connections", "1",
                                         "--request-timeout-seconds", "30"],
                             probe_scheme="https", ca_file=str(cert))
    # The health probe's connection may still be closing: wait until a client is admitted.
    base = f"https://{HOST}:{server.port}"
    deadline = time.monotonic() + 10
    while True:
        holder = session_for(cert)
        if holder.get(f"{base}/.json").status_code == 200:
            break
        holder.close()
        assert time.monotonic() < deadline, "the probe's slot never came back"
        time.sleep(0.2)
    curl = shutil.which("curl")
    started = time.monotonic()
    result = subprocess.run([curl, "-s", "--cacert", str(cert), "--http2", "-H", "Authorization: Bearer owner",
                             "-w", "\n%{http_version} %{http_code}", f"{base}/.json"],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.endswith("2 503"), (result.stdout, result.stderr)
    assert "limit of 1 connections" in result.stdout
    # curl waits for the server to close the refused connection (2 s), not for a timeout.
    assert time.monotonic() - started < 10
    # The admitted client is served all along.
    assert holder.get(f"{base}/.json").status_code == 200
