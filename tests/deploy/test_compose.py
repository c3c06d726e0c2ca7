"""deploy/compose.yaml and its env example, held against the code they configure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import (
    DATABASE_SERVICES,
    DEPLOY,
    NOT_SETTINGS,
    commented_variables,
    compose,
    database_name,
    expected_port,
    interpolate,
    read_env_file,
    serve_context,
    service_of,
    settings_fields,
)

from pasar_cli.services import SERVICES

EXAMPLE = DEPLOY / "pasar.env.example"
# Read by compose.yaml itself (interpolation), not by a pasar process.
COMPOSE_ONLY = {
    "MARIADB_ROOT_PASSWORD",
    "PASAR_USERS_DB_PASSWORD",
    "PASAR_PRODUCTS_DB_PASSWORD",
    "PASAR_ORDERS_DB_PASSWORD",
}


def services() -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"]
    return result


def environment_of(name: str) -> dict[str, str]:
    """What a compose service's process sees: the env file, then its own environment."""
    example = read_env_file(EXAMPLE)
    service = services()[name]
    env = dict(example) if service.get("env_file") else {}
    for key, value in (service.get("environment") or {}).items():
        env[key] = interpolate(str(value), example)
    return env


def test_every_variable_of_the_env_example_is_read_by_someone() -> None:
    compose_text = (DEPLOY / "compose.yaml").read_text()
    for variable in [*read_env_file(EXAMPLE), *commented_variables(EXAMPLE)]:
        if variable in COMPOSE_ONLY:
            assert "${" + variable in compose_text, f"{variable} is used nowhere in compose.yaml"
            continue
        if variable in commented_variables(EXAMPLE):
            continue  # another change's setting, marked for when it lands
        spec = service_of(variable)
        assert spec is not None, f"{variable}: no service reads it"
        assert variable in settings_fields(spec), f"{variable} is not a {spec.name} setting"


def test_every_variable_a_compose_service_sets_is_one_of_its_settings() -> None:
    for name, service in services().items():
        for variable in service.get("environment") or {}:
            if name == "mariadb":
                assert variable.startswith(("MARIADB_", "PASAR_")), variable
                continue
            if variable in NOT_SETTINGS:
                continue
            spec = service_of(variable)
            assert spec is not None, f"{name} sets {variable}, which no service reads"
            if name != "migrate":
                assert spec.name == name, f"{name} sets {variable}, another service's"
            assert variable in settings_fields(spec), f"{variable} is not a {spec.name} setting"


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_starts_from_the_example_configuration(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example, as compose hands it to the process, is a valid production config."""
    for key, value in environment_of(name).items():
        monkeypatch.setenv(key, value)
    settings = SERVICES[name].settings()
    assert settings.environment == "production"


@pytest.mark.parametrize("name", list(SERVICES))
def test_command_serves_that_service_on_its_port(name: str) -> None:
    service = services()[name]
    context = serve_context(service["command"])
    assert context.params["service"] == name
    assert context.params["port"] == expected_port(name)
    assert context.params["host"] == "0.0.0.0"
    # The migration service migrates; replicas must not race it.
    assert context.params["migrate"] is not SERVICES[name].has_database
    assert environment_of(name)["PASAR_HEALTH_PORT"] == str(expected_port(name))
    assert "migrate" in service["depends_on"]


def test_the_migration_runs_once_before_the_services() -> None:
    migrate = services()["migrate"]
    context = serve_context(migrate["command"])
    assert context.command.name == "migrate"
    assert migrate.get("restart") in (None, "no")
    assert "deploy" not in migrate
    for name in SERVICES:
        condition = services()[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_each_database_url_names_its_own_database_and_user(name: str) -> None:
    variable = f"{SERVICES[name].env_prefix}DATABASE_URL"
    for process in (name, "migrate"):
        user, database = database_name(environment_of(process)[variable])
        assert (user, database) == (f"pasar_{name}", f"pasar_{name}")
    for other in SERVICES:
        if other != name:
            assert variable not in environment_of(other), f"{other} can read {variable}"
    init = (DEPLOY / "mariadb-init.sh").read_text()
    assert "CREATE DATABASE IF NOT EXISTS pasar_$service" in init
    assert "ON pasar_$service.* TO 'pasar_$service'" in init
    assert name in init.split("for service in", 1)[1].split(";", 1)[0]


def test_only_the_gateway_is_published_and_replicas_are_as_documented() -> None:
    published = {name for name, service in services().items() if service.get("ports")}
    assert published == {"gateway"}
    assert services()["products"]["deploy"]["replicas"] == 2
    assert services()["orders"]["deploy"]["replicas"] == 2
    # Both products replicas see one image directory.
    image_dir = environment_of("products")["PRODUCTS_IMAGE_DIR"]
    assert any(v.split(":")[1] == image_dir for v in services()["products"]["volumes"])
    assert Path(image_dir).is_absolute()


def test_services_run_unprivileged_on_a_read_only_root() -> None:
    for name in [*SERVICES, "migrate"]:
        service = services()[name]
        assert service["read_only"] is True, name
        assert service["user"] == "10001", name
        assert "/tmp" in service["tmpfs"], name


def test_the_services_believe_forwarded_headers_only_from_the_network() -> None:
    gateway_ip = services()["gateway"]["networks"]["default"]["ipv4_address"]
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    for name in SERVICES:
        allowed = serve_context(services()[name]["command"]).params["forwarded_allow_ips"]
        assert allowed in (gateway_ip, subnet), name
        assert allowed != "*"
    # web is reached only through the gateway: it believes the gateway alone.
    assert serve_context(services()["web"]["command"]).params["forwarded_allow_ips"] == gateway_ip


def interpolated() -> dict[str, Any]:
    """The compose file as compose reads it with the example env file."""
    text = interpolate((DEPLOY / "compose.yaml").read_text(), read_env_file(EXAMPLE))
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def test_the_file_is_valid_against_the_compose_specification() -> None:
    """Parsed by compose-spec (the Compose Specification's typed model: unknown keys, wrong
    types and undefined networks or volumes are refused), as `docker compose config` would."""
    import compose_spec

    data = interpolated()
    compose_spec.PyCompose.from_yaml(yaml.safe_dump(data)).validate()
    for name, service in data["services"].items():
        for needed in service.get("depends_on") or {}:
            assert needed in data["services"], f"{name} depends on {needed}, not a service"
    # The validator does refuse.
    data["services"]["users"]["comand"] = ["serve"]
    with pytest.raises(ValueError, match="comand"):
        compose_spec.PyCompose.from_yaml(yaml.safe_dump(data))


def test_the_gateway_starts_once_every_upstream_is_healthy() -> None:
    depends = services()["gateway"]["depends_on"]
    assert set(depends) == set(SERVICES)
    assert all(d["condition"] == "service_healthy" for d in depends.values())
