"""The compose gateway (deploy/nginx/nginx.conf): its routes against the services' own,
and the file itself through `nginx -t`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from deploy_files import DEPLOY, app_paths, compose, expected_port

from pasar_cli.services import SERVICES

CONF = DEPLOY / "nginx" / "nginx.conf"
API_SERVICES = ("users", "products", "orders")


def conf() -> str:
    return re.sub(r"#.*", "", CONF.read_text())


def locations() -> dict[str, str]:
    """Each location's match (``~ regex`` or a prefix) and its body."""
    return {
        m.group(1).strip(): m.group(2)
        for m in re.finditer(r"location\s+([^{]+?)\s*\{([^}]*)\}", conf())
    }


def route(path: str) -> tuple[str, str | None]:
    """Where nginx sends ``path``: regex locations first (in order), else the longest
    prefix; the answer is ("return", code) or ("proxy", upstream path)."""
    body: str | None = None
    for match, text in locations().items():
        if match.startswith("~") and re.search(match[1:].strip(), path):
            body = text
            break
    if body is None:
        prefixes = [m for m in locations() if not m.startswith("~") and path.startswith(m)]
        longest = max(prefixes, key=len)
        body = locations()[longest]
        if "proxy_pass" in body:
            target = re.search(r"proxy_pass\s+http://([a-z]+)(/?)\s*;", body)
            assert target is not None
            upstream, slash = target.groups()
            forwarded = "/" + path[len(longest) :] if slash else path
            return "proxy", f"{upstream}{forwarded}"
    returned = re.search(r"return\s+(\d+)", body)
    assert returned is not None
    return "return", returned.group(1)


def test_upstreams_are_the_compose_services_on_their_ports() -> None:
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+([\w.:]+)", conf()))
    assert upstreams == {name: f"{name}:{expected_port(name)}" for name in SERVICES}
    assert set(upstreams) <= set(compose()["services"])


@pytest.mark.parametrize("name", API_SERVICES)
def test_every_public_route_is_reached_under_its_prefix_and_no_internal_one(name: str) -> None:
    paths = app_paths(name)
    assert any(p.startswith("/internal") for p in paths) or name == "orders"
    for path in paths:
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        answer = route(f"/api/{name}{concrete}")
        if path.startswith(("/internal", "/metrics")):
            assert answer == ("return", "404"), path
        else:
            assert answer == ("proxy", f"{name}{concrete}"), path


def test_the_storefront_is_the_root_and_no_service_is_reached_without_the_prefix() -> None:
    for path in app_paths("web"):
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        if concrete.startswith("/metrics"):
            assert route(concrete) == ("return", "404")
        else:
            assert route(concrete) == ("proxy", f"web{concrete}"), path
    assert route("/internal/reservations") == ("return", "404")
    assert route("/api/products/internal/reservations/x1/commit") == ("return", "404")
    assert route("/api/users/metrics") == ("return", "404")


def test_forwarded_headers_are_the_gateways_own() -> None:
    text = conf()
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", text)
    assert "$proxy_add_x_forwarded_for" not in text
    assert re.search(r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;", text)
    assert re.search(r'proxy_set_header\s+Forwarded\s+"";', text)


def test_body_limits_follow_the_services() -> None:
    from pasar_products.settings import Settings as ProductsSettings
    from pasar_web.settings import Settings as WebSettings

    def megabytes(body: str) -> int:
        found = re.search(r"client_max_body_size\s+(\d+)m;", body)
        assert found is not None
        return int(found.group(1)) * 1024 * 1024

    default = megabytes(conf().split("server {")[0])
    assert default == ProductsSettings().max_body_bytes
    upload = ProductsSettings().image_max_bytes + 16 * 1024
    assert megabytes(locations()["/api/products/"]) >= upload
    assert megabytes(locations()["/"]) >= WebSettings().image_max_bytes + 16 * 1024
    for name in ("users", "orders"):
        assert "client_max_body_size" not in locations()[f"/api/{name}/"]


def _self_signed(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.needs_nginx
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    """The real file, with two things only a container has: the compose service names
    (resolved by the compose network's DNS) become 127.0.0.1, and the certificate
    directory is a temporary one holding a self-signed pair."""
    _self_signed(tmp_path)
    text = CONF.read_text()
    for name in SERVICES:
        text = text.replace(f"server {name}:", "server 127.0.0.1:")
    text = text.replace("/etc/nginx/tls/", f"{tmp_path}/")
    assert "/etc/nginx/tls" not in text
    checked = tmp_path / "nginx.conf"
    checked.write_text(text)
    result = subprocess.run(
        ["nginx", "-t", "-c", str(checked), "-p", str(tmp_path), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


class _Recorder(BaseHTTPRequestHandler):
    """Answers with what it received: its own name, the path and the headers."""

    name = ""

    def do_GET(self) -> None:
        body = json.dumps(
            {"upstream": self.name, "path": self.path, "headers": dict(self.headers)}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.needs_nginx
def test_nginx_routes_strips_prefixes_and_replaces_forwarded_headers(tmp_path: Path) -> None:
    """The gateway's file run by a real nginx, in front of one small recording server per
    upstream (standing in for the services: what is checked is what nginx sends them)."""
    _self_signed(tmp_path)
    servers = {}
    text = CONF.read_text()
    for name in SERVICES:
        handler = type(f"Recorder_{name}", (_Recorder,), {"name": name})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
        text = text.replace(
            f"server {name}:{expected_port(name)};", f"server 127.0.0.1:{server.server_port};"
        )
    plain, secure = _free_port(), _free_port()
    text = text.replace("listen 80;", f"listen 127.0.0.1:{plain};")
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{secure} ssl")
    text = text.replace("/etc/nginx/tls/", f"{tmp_path}/").replace(
        "/tmp/nginx.pid", f"{tmp_path}/nginx.pid"
    )
    (tmp_path / "nginx.conf").write_text(text)
    nginx = subprocess.Popen(
        ["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", "stderr",
         "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"https://127.0.0.1:{secure}"
        with httpx.Client(verify=False, timeout=5) as client:
            for _ in range(50):
                try:
                    client.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            spoofed = {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"}
            seen = client.get(f"{base}/api/products/products?q=kopi", headers=spoofed).json()
            assert seen["upstream"] == "products"
            assert seen["path"] == "/products?q=kopi"
            headers = {k.lower(): v for k, v in seen["headers"].items()}
            assert headers["x-forwarded-for"] == "127.0.0.1"
            assert headers["x-forwarded-proto"] == "https"
            assert "forwarded" not in headers
            assert client.get(f"{base}/cart").json()["upstream"] == "web"
            assert client.get(f"{base}/api/orders/orders").json()["path"] == "/orders"
            assert client.get(f"{base}/api/users/internal/users/1").status_code == 404
            assert client.get(f"{base}/api/users/metrics").status_code == 404
            big = client.post(f"{base}/api/users/auth/token", content=b"x" * (2 * 1024 * 1024))
            assert big.status_code == 413
            redirect = client.get(f"http://127.0.0.1:{plain}/cart")
            assert redirect.status_code == 308
            assert redirect.headers["location"].startswith("https://")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        for server in servers.values():
            server.shutdown()
