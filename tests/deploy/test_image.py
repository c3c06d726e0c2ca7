"""The image recipe and the requirements split (runtime for the image, development for
`make`). That the runtime set alone imports every service is checked by .ci/run, which
installs it into a fresh venv."""

from __future__ import annotations

import re

from deploy_files import DEPLOY, ROOT, serve_context

DEV_ONLY = {"pytest", "pytest-asyncio", "mypy", "ruff", "schemathesis", "playwright",
            "hypothesis", "axe-playwright-python", "kubernetes-validate"}  # fmt: skip


def pins(name: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-r ")):
            continue
        package, sep, version = line.partition("==")
        assert sep and version, f"{name}: {line} is not pinned"
        result[re.sub(r"[-_.]+", "-", package).lower()] = version
    return result


def test_runtime_and_development_sets_are_split_and_pinned() -> None:
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not DEV_ONLY & set(runtime), "a development tool in the runtime set"
    assert set(dev) >= DEV_ONLY
    assert not set(runtime) & set(dev), "pinned twice"
    first = next(
        line for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )  # fmt: skip
    assert first == "-r requirements.txt"
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -r requirements-dev.txt" in makefile
    assert re.search(r"^\$\(STAMP\): requirements.txt requirements-dev.txt", makefile, re.M)


def test_the_image_is_multi_stage_unprivileged_and_checks_its_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M)
    assert len(stages) >= 2
    final = text.rsplit("\nFROM ", 1)[1]
    assert "requirements-dev" not in text
    assert "-r /tmp/requirements.txt" in text
    assert "COPY --from=build /opt/pasar /opt/pasar" in final
    user = re.findall(r"^USER\s+(\S+)", final, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*/healthz", final, re.M | re.S)
    assert "PASAR_HEALTH_PORT" in final
    entrypoint = re.search(r'^ENTRYPOINT \["pasar"\]', final, re.M)
    assert entrypoint
    command = re.search(r"^CMD (\[.*\])", final, re.M)
    assert command
    import json

    serve_context(json.loads(command.group(1)))


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", "**/build", "deploy/pasar.env", "deploy/tls"} <= ignored
    # What the Dockerfile copies is still sent.
    copied = re.findall(r"^COPY (?:--from=\S+ )?(\S+)", (DEPLOY / "Dockerfile").read_text(), re.M)
    for source in copied:
        if source.startswith("/"):
            continue
        assert source not in ignored and (ROOT / source).exists(), source
