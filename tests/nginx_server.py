"""A real Debian ``nginx`` on loopback, in front of apps under uvicorn, for tests.

nginx runs in the foreground from its own folder (configuration, pid, logs, temporary
files, a self-signed certificate for its https listeners), and forwards what a typical
deployment forwards: ``X-Forwarded-For`` (the client's list plus the address it saw),
``X-Forwarded-Proto`` (the scheme the client used with nginx, replacing any sent) and
``Forwarded``. It connects to the apps from 127.0.0.1 (``proxy_bind``), so that clients can
use other loopback addresses (127.0.0.2, …) and be told apart from the proxy.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpers import EXAMPLE_DIR, ROOT, free_port, need, stop, wait_listening
from leakcheck import RECORDER

PROXY_ADDRESS = "127.0.0.1"  # nginx's source address towards the apps


@dataclass
class Listener:
    """One nginx ``server`` block: a loopback port, http or https, in front of ``upstream``."""

    upstream: str  # host:port of the app
    tls: bool = False
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _config(directory: Path, listeners: list[Listener], cert: Path, key: str) -> str:
    servers = []
    for listener in listeners:
        tls = (f"ssl_certificate {cert}; ssl_certificate_key {key};"
               if listener.tls else "")
        servers.append(f"""
  server {{
    listen 127.0.0.1:{listener.port}{' ssl' if listener.tls else ''};
    {tls}
    location / {{
      proxy_pass http://{listener.upstream};
      proxy_bind {PROXY_ADDRESS};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Forwarded "for=$remote_addr;proto=$scheme";
    }}
  }}""")
    user = pwd.getpwuid(os.geteuid()).pw_name  # workers as the test's user (if root)
    return f"""
user {user};
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  fastcgi_temp_path {directory}/fastcgi;
  uwsgi_temp_path {directory}/uwsgi;
  scgi_temp_path {directory}/scgi;
{''.join(servers)}
}}
"""


@contextlib.contextmanager
def run_nginx(directory: Path, listeners: list[Listener]) -> Iterator[list[Listener]]:
    """nginx in front of ``listeners``' upstreams until the block ends."""
    need("nginx", "tests behind a real reverse proxy")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = _self_signed(directory)
    conf = directory / "nginx.conf"
    conf.write_text(_config(directory, listeners, cert, str(key)), encoding="utf-8")
    proc = subprocess.Popen(["nginx", "-p", str(directory), "-c", str(conf),
                             "-e", str(directory / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        for listener in listeners:
            while True:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"nginx exited with {proc.returncode}: {err}")
                try:
                    with socket.create_connection(("127.0.0.1", listener.port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("nginx did not start in 20 s") from None
                    time.sleep(0.05)
        yield listeners
    finally:
        proc.terminate()  # SIGTERM: fast shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@dataclass
class App:
    """The example app under uvicorn; its output goes to ``log`` (read it any time)."""

    url: str
    upstream: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def example_app(log: Path, env: Mapping[str, str]) -> Iterator[App]:
    """The example app under uvicorn on 127.0.0.1, with uvicorn's own proxy-header
    handling off: the addresses and schemes the app sees are authguard's reading."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLE_DIR),
           "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
           "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    app = App(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", log)
    try:
        wait_listening(port, proc, app.output)
        yield app
    finally:
        stop(proc)
        RECORDER.text("output of uvicorn app:app behind nginx", app.output())
