"""Run a real distribution registry (Debian's ``docker-registry``) for tests.

Reusable by any test suite::

    from tests.registry.registry_server import start_registry
    server = start_registry(tmp_path)            # plain HTTP on 127.0.0.1:<free port>
    ...
    server.stop()                                # always: kills the process

Variants: TLS (``make_test_ca`` + ``make_server_cert`` with openssl), basic auth
(``htpasswd`` file written with apache2-utils' ``htpasswd -B``), and token auth
against ``TokenServer``, a small http.server thread that signs RS256 JWTs with
openssl and grants scopes by a policy.  Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
HTPASSWD_BINARY = shutil.which("htpasswd")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
TEST_USERS = {"alice": "wonderland"}  # accounts of the basic-auth and token variants


def registry_available() -> bool:
    return os.access(REGISTRY_BINARY, os.X_OK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


# -- certificates -------------------------------------------------------------

@dataclass
class RegistryTLS:
    ca_cert: Path
    cert: Path
    key: Path


def make_test_ca(directory: Path, name: str = "dockyard-test-ca") -> tuple[Path, Path]:
    """A self-signed CA (cert, key) valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(cert),
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path], name: str = "registry") -> RegistryTLS:
    """A server certificate for 127.0.0.1 and localhost signed by ``ca``."""
    ca_cert, ca_key = ca
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key),
             "-out", str(csr), cwd=directory)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "1", "-extfile", str(ext), "-out", str(cert), cwd=directory)
    return RegistryTLS(ca_cert=ca_cert, cert=cert, key=key)


# -- token server -------------------------------------------------------------

Grant = Callable[[str | None, list[tuple[str, str, list[str]]]], list[dict]]


def grant_all_to_users_public_pull(user: str | None, wanted: list[tuple[str, str, list[str]]]) -> list[dict]:
    """Default policy: a signed-in user gets what it asks; anonymous may pull ``public/*``."""
    granted = []
    for kind, name, actions in wanted:
        if user is not None:
            granted.append({"type": kind, "name": name, "actions": actions})
        elif name.startswith("public/") and "pull" in actions:
            granted.append({"type": kind, "name": name, "actions": ["pull"]})
    return granted


@dataclass
class TokenServer:
    """Docker token auth (the ``/token`` endpoint) signing JWTs with an RSA test key."""

    directory: Path
    users: dict[str, str] = field(default_factory=dict)
    service: str = "dockyard-test-registry"
    issuer: str = "dockyard-test-issuer"
    grant: Grant = grant_all_to_users_public_pull
    accept_post: bool = True  # False: POST answers 405 (like servers without OAuth2 forms)
    log: list[dict] = field(default_factory=list)  # one entry per token request

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert = self.directory / "token.crt"
        self.key = self.directory / "token.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=token-signer",
                 "-keyout", str(self.key), "-out", str(self.cert), cwd=self.directory)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True, timeout=30).stdout
        self._x5c = base64.b64encode(der).decode()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/token"

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = server._basic_user(self.headers.get("Authorization"))
                server._answer(self, "GET", user, query.get("scope", []), query.get("service", [""])[0],
                               grant_type=None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if not server.accept_post:
                    server.log.append({"method": "POST", "refused": True})
                    self.send_response(405)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                grant_type = form.get("grant_type", [""])[0]
                user = None
                if grant_type == "password":
                    name, password = form.get("username", [""])[0], form.get("password", [""])[0]
                    user = name if server.users.get(name) == password and name else ""
                server._answer(self, "POST", user, form.get("scope", []), form.get("service", [""])[0],
                               grant_type=grant_type)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)

    def _basic_user(self, header: str | None) -> str | None:
        """None: anonymous; "": wrong credentials; else the user name."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return ""
        return name if name and self.users.get(name) == password else ""

    def _answer(self, handler: BaseHTTPRequestHandler, method: str, user: str | None,
                scope_values: list[str], service: str, grant_type: str | None) -> None:
        scopes = [s for value in scope_values for s in value.split()]
        self.log.append({"method": method, "user": user, "scopes": scopes, "grant_type": grant_type})
        if user == "":
            body, status = b'{"details":"bad credentials"}', 401
        else:
            wanted = []
            for scope in scopes:
                parts = scope.split(":")
                if len(parts) >= 3:
                    wanted.append((parts[0], ":".join(parts[1:-1]), parts[-1].split(",")))
            token = self.sign(user or "", self.grant(user, wanted), audience=service or self.service)
            key = "access_token" if method == "POST" else "token"
            body, status = json.dumps({key: token, "expires_in": 300}).encode(), 200
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def sign(self, subject: str, access: list[dict], audience: str) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": subject, "aud": audience, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True,
                                   timeout=30).stdout
        return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- the registry process ------------------------------------------------------

@dataclass
class RegistryServer:
    host: str  # "127.0.0.1:<port>"
    scheme: str
    root: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    """A bcrypt htpasswd file (needs apache2-utils' ``htpasswd``)."""
    if HTPASSWD_BINARY is None:
        raise RuntimeError("htpasswd not installed (apt-get install apache2-utils)")
    lines = []
    for name, password in users.items():
        out = subprocess.run([HTPASSWD_BINARY, "-Bbn", name, password], check=True, capture_output=True,
                             text=True, timeout=30).stdout
        lines.append(out.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def start_registry(directory: Path, *, tls: RegistryTLS | None = None, htpasswd: Path | None = None,
                   token: TokenServer | None = None, port: int | None = None) -> RegistryServer:
    """Start ``docker-registry serve`` on 127.0.0.1 and wait until ``/v2/`` answers."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    storage = directory / "storage"
    storage.mkdir(exist_ok=True)
    lines = [
        "version: 0.1",
        "log:", "  level: warn", "  accesslog:", "    disabled: true",
        "storage:", f"  filesystem:", f"    rootdirectory: {storage}", "  delete:", "    enabled: true",
        "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {uuid.uuid4().hex}",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.cert}", f"    key: {tls.key}"]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: dockyard-test", f"    path: {htpasswd}"]
    elif token is not None:
        lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                  f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert}"]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log_path = directory / "registry.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = RegistryServer(host=f"127.0.0.1:{port}", scheme="https" if tls else "http", root=directory,
                            process=process, log_path=log_path)
    try:
        _wait_ready(server, tls)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: RegistryServer, tls: RegistryTLS | None) -> None:
    context = ssl.create_default_context(cafile=str(tls.ca_cert)) if tls else None
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"registry exited with {server.process.returncode}:\n{server.log()}")
        try:
            urllib.request.urlopen(f"{server.url}/v2/", timeout=2, context=context).close()
            return
        except urllib.error.HTTPError:
            return  # 401 from an auth-enabled registry: it is up
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"registry did not answer within {START_TIMEOUT} s:\n{server.log()}")
            time.sleep(0.05)
