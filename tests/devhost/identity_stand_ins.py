"""Local stand-ins for Azure's identity plumbing, so identity-based storage is tested with no network.

- ``self_signed_certificate``: a certificate for 127.0.0.1/localhost (Azurite accepts bearer tokens only
  over HTTPS), trusted by the processes under test through ``SSL_CERT_FILE``.
- ``start_oauth_azurite``: Azurite with ``--oauth basic`` over HTTPS. Its basic check decodes the JWT
  without verifying the signature and requires ``nbf``/``exp``/``iat`` around now, an ``iss`` starting with
  ``https://sts.windows.net/`` (or another Entra authority) and the audience ``https://storage.azure.com``.
- ``ManagedIdentityEndpoint``: the App Service managed-identity endpoint (``IDENTITY_ENDPOINT`` /
  ``IDENTITY_HEADER``): ``GET ?api-version=2019-08-01&resource=...&client_id=...`` with the
  ``X-IDENTITY-HEADER`` secret, answering ``access_token`` and ``expires_on``.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devhost.azurite import ACCOUNT, AzuriteProcess, find_azurite, free_port, is_listening

TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
STORAGE_AUDIENCE = "https://storage.azure.com"
MANAGED_IDENTITY_API_VERSION = "2019-08-01"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A fresh key and certificate (PEM) valid for 127.0.0.1 and localhost; returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def start_oauth_azurite(
    location: Path, cert: Path, key: Path, search_from: Path, timeout: float = 30.0
) -> AzuriteProcess:
    """Azurite on free ports, HTTPS with ``cert``/``key``, accepting bearer tokens (``--oauth basic``)."""
    location.mkdir(parents=True, exist_ok=True)
    ports = (free_port(), free_port(), free_port())
    log_path = location / "azurite.log"
    args = [
        str(find_azurite(search_from)), "--skipApiVersionCheck", "--disableTelemetry", "--location", str(location),
        "--oauth", "basic", "--cert", str(cert), "--key", str(key),
        "--debug", str(location / "debug.log"),  # the test reads which authenticator accepted each request
        "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
    ]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    azurite = AzuriteProcess(process, ports, location, log_path)
    deadline = time.monotonic() + timeout
    while not all(is_listening(p) for p in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            azurite.stop()
            raise RuntimeError(f"Azurite with OAuth did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return azurite


def service_uris(azurite: AzuriteProcess) -> dict[str, str]:
    blob, queue, table = azurite.ports
    return {name: f"https://127.0.0.1:{port}/{ACCOUNT}"
            for name, port in (("blob", blob), ("queue", queue), ("table", table))}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def storage_token(lifetime: int, audience: str = STORAGE_AUDIENCE) -> tuple[str, int]:
    """A JWT shaped like an Entra access token for storage; the signature is never checked by Azurite."""
    now = int(time.time())
    claims = {"aud": audience, "iss": f"https://sts.windows.net/{TENANT_ID}/", "iat": now - 60, "nbf": now - 60,
              "exp": now + lifetime, "tid": TENANT_ID, "oid": "managed-identity-object-id", "ver": "1.0"}
    header = {"alg": "HS256", "typ": "JWT"}
    body = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{body}.{_b64url(secrets.token_bytes(32))}", now + lifetime


@dataclass
class ManagedIdentityEndpoint:
    """The App Service managed-identity endpoint for one user-assigned identity, on a loopback port."""

    client_id: str
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    token_lifetime: int = 3600
    requests: list[dict[str, str]] = field(default_factory=list)  # every query answered with a token
    refused: list[str] = field(default_factory=list)  # why any other request was refused
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"

    def environment(self) -> dict[str, str]:
        """What App Service sets in the app's environment."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                problem = endpoint._check(self.headers.get("X-IDENTITY-HEADER"), query)
                if problem:
                    endpoint.refused.append(problem)
                    self._answer(400, {"error": "invalid_request", "error_description": problem})
                    return
                token, expires_on = storage_token(endpoint.token_lifetime, query["resource"])
                endpoint.requests.append(query)
                self._answer(200, {"access_token": token, "expires_on": str(expires_on), "token_type": "Bearer",
                                   "resource": query["resource"], "client_id": endpoint.client_id})

            def _answer(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _check(self, header: str | None, query: dict[str, str]) -> str:
        if header != self.secret:
            return "missing or wrong X-IDENTITY-HEADER"
        if query.get("api-version") != MANAGED_IDENTITY_API_VERSION:
            return f"api-version must be {MANAGED_IDENTITY_API_VERSION}, got {query.get('api-version')}"
        if query.get("resource") not in (STORAGE_AUDIENCE, STORAGE_AUDIENCE + "/"):
            return f"this identity only has storage roles, not {query.get('resource')}"
        if query.get("client_id") != self.client_id:
            return f"no user-assigned identity with client_id {query.get('client_id')}"
        return ""

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
