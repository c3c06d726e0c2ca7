"""The deploy suite: nginx and kustomize are needed by some tests; in CI
(PASAR_REQUIRE_DEPLOY_TOOLS=1) a missing one is an error, elsewhere those tests skip."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from deploy_files import kustomize_command, require_tools

HERE = Path(__file__).parent

TOOLS = {
    "nginx": (shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx)"),
    "kustomize": (
        kustomize_command() is not None,
        "neither kustomize nor kubectl is installed (apt-get install kubectl)",
    ),
    "kubernetes_validate": (
        importlib.util.find_spec("kubernetes_validate") is not None,
        "kubernetes-validate is not installed (requirements-dev.txt)",
    ),
}


def pytest_configure(config: pytest.Config) -> None:
    for tool in TOOLS:
        config.addinivalue_line("markers", f"needs_{tool}: the test runs {tool}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in Path(item.path).parents:
            continue
        for tool, (present, reason) in TOOLS.items():
            if present or item.get_closest_marker(f"needs_{tool}") is None:
                continue
            if require_tools():
                raise pytest.UsageError(f"PASAR_REQUIRE_DEPLOY_TOOLS is set but {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))
