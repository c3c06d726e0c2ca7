"""The deploy files, read as data, and what the code says they must agree with."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import typer
import yaml
from fastapi.routing import APIRoute

from pasar_cli.main import app as cli_app
from pasar_cli.services import SERVICES, ServiceSpec

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
DATABASE_SERVICES = tuple(name for name, spec in SERVICES.items() if spec.has_database)

# Variables the deploy files may set that no service's Settings reads, and who reads them.
NOT_SETTINGS = {
    "FORWARDED_ALLOW_IPS": "pasar serve --forwarded-allow-ips",
    "PASAR_HEALTH_PORT": "the image's HEALTHCHECK",
}


def require_tools() -> bool:
    """True where the deploy tools must be there (CI): a missing one fails, not skips."""
    return bool(os.environ.get("PASAR_REQUIRE_DEPLOY_TOOLS"))


def service_of(variable: str) -> ServiceSpec | None:
    """The service whose settings a variable belongs to, by its prefix."""
    for spec in SERVICES.values():
        if variable.startswith(spec.env_prefix):
            return spec
    return None


@cache
def settings_fields(spec: ServiceSpec) -> frozenset[str]:
    settings_class = type(spec.settings())
    return frozenset(spec.env_prefix + name.upper() for name in settings_class.model_fields)


def serve_context(args: list[str]) -> Any:
    """The `pasar` command line parsed by the real CLI, without running anything: its
    click context (``.params``, ``.command.name``); an unknown option raises."""
    group = typer.main.get_command(cli_app)
    assert isinstance(group, typer.core.TyperGroup)
    name, *rest = args
    command = group.commands[name]
    assert isinstance(command, typer.core.TyperCommand)
    return command.make_context(name, list(rest))


def expected_port(service: str) -> int:
    return 8000 + SERVICES[service].port_offset


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def commented_variables(path: Path) -> set[str]:
    """Variables named in commented-out assignments (``# NAME=`` or ``# NAME:``)."""
    return set(re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]+)\s*[=:]", path.read_text(), re.M))


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}, from ``env``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg or ""
        raise KeyError(name)

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", one, value)


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    command = kustomize_command()
    assert command is not None
    out = subprocess.run(
        [*command, str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> Iterator[dict[str, Any]]:
    return (doc for doc in docs if doc["kind"] == kind)


def named(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def database_name(url: str) -> tuple[str | None, str]:
    """The user and the database a SQLAlchemy URL names."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.username, str(parsed.database)


def app_paths(name: str) -> list[str]:
    """The routes the service's app serves (built with its default settings)."""
    module = importlib.import_module(f"{SERVICES[name].package}.app")
    app = module.create_app(SERVICES[name].settings())
    return [r.path for r in app.routes if isinstance(r, APIRoute)]
