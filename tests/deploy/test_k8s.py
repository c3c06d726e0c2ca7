"""deploy/k8s rendered by kustomize (every overlay), validated against the Kubernetes API
schemas offline, and held against the code: commands, ports, probes, settings, routes."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from deploy_files import (
    DATABASE_SERVICES,
    K8S,
    NOT_SETTINGS,
    OVERLAYS,
    app_paths,
    commented_variables,
    database_name,
    expected_port,
    named,
    of_kind,
    rendered,
    serve_context,
    service_of,
    settings_fields,
)

from pasar_cli.services import SERVICES

KUBERNETES_VERSION = "1.33"
pytestmark = pytest.mark.needs_kustomize
Doc = dict[str, Any]


def container(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    spec = named(docs, kind, name)["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    result: Doc = only
    return result


def example_secrets() -> dict[str, dict[str, str]]:
    text = (K8S / "secrets-example" / "secrets.yaml").read_text()
    return {d["metadata"]["name"]: d["stringData"] for d in yaml.safe_load_all(text)}


@pytest.mark.needs_kubernetes_validate
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_against_the_api_schemas(overlay: str) -> None:
    import kubernetes_validate

    docs = rendered(overlay)
    assert {d["kind"] for d in docs} >= {
        "ConfigMap", "Deployment", "Service", "Job", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "Ingress", "NetworkPolicy", "PersistentVolumeClaim",
    }  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    # The validator does refuse: an unknown field and a wrong type.
    broken = copy.deepcopy(named(docs, "Deployment", "users"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(named(docs, "Service", "users"))
    broken["spec"]["ports"][0]["port"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", list(SERVICES))
def test_deployment_serves_its_service_with_probes_on_its_port(overlay: str, name: str) -> None:
    docs = rendered(overlay)
    c = container(docs, "Deployment", name)
    context = serve_context(c["args"])
    port = expected_port(name)
    assert (context.params["service"], context.params["port"]) == (name, port)
    assert context.params["host"] == "0.0.0.0"
    assert context.params["migrate"] is False or not SERVICES[name].has_database
    assert c["ports"] == [{"name": "http", "containerPort": port}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}, (name, kind)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    pod = named(docs, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    service = named(docs, "Service", name)
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    labels = named(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (budget,) = [
        p
        for p in of_kind(docs, "PodDisruptionBudget")
        if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert budget["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_products_and_orders_scale_automatically(overlay: str) -> None:
    docs = rendered(overlay)
    targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert targets == {"products", "orders"}
    for target in targets:
        named(docs, "Deployment", target)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_a_setting_of_the_service_that_gets_it(overlay: str) -> None:
    docs = rendered(overlay)
    config = named(docs, "ConfigMap", "pasar-config")["data"]
    secrets = example_secrets()
    for name in SERVICES:
        c = container(docs, "Deployment", name)
        variables = [e["name"] for e in c.get("env", [])]
        for source in c["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] == "pasar-config"
                variables += [v for v in config if v.startswith(SERVICES[name].env_prefix)]
            else:
                # One Secret per service, holding only that service's variables.
                secret = source["secretRef"]["name"]
                assert secret == f"pasar-{name}"
                assert all(service_of(v) == SERVICES[name] for v in secrets[secret]), secret
                variables += list(secrets[secret])
        for variable in variables:
            if variable in NOT_SETTINGS:
                continue
            spec = service_of(variable)
            assert spec == SERVICES[name], f"{name} gets {variable}"
            assert variable in settings_fields(spec), f"{variable} is not a {name} setting"
    for variable in config:
        spec = service_of(variable)
        assert spec is not None and variable in settings_fields(spec), variable
    base_config = K8S / "base" / "config.yaml"
    assert commented_variables(base_config), "the other changes' settings are marked"


def test_the_example_configuration_starts_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap and example Secrets, as a production pod gets them, validate (the
    signing key aside: the example holds a placeholder, not a key)."""
    docs = rendered("production")
    config = named(docs, "ConfigMap", "pasar-config")["data"]
    secrets = example_secrets()
    for name in SERVICES:
        with monkeypatch.context() as patch:
            for key, value in [*config.items(), *secrets[f"pasar-{name}"].items()]:
                patch.setenv(key, value)
            assert SERVICES[name].settings().environment == "production"


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_each_database_url_names_its_own_database(name: str) -> None:
    url = example_secrets()[f"pasar-{name}"][f"{SERVICES[name].env_prefix}DATABASE_URL"]
    assert database_name(url) == (f"pasar_{name}", f"pasar_{name}")
    job = container(rendered("production"), "Job", "pasar-migrate")
    (ref,) = [e for e in job["env"] if e["name"] == f"{SERVICES[name].env_prefix}DATABASE_URL"]
    assert ref["valueFrom"]["secretKeyRef"]["name"] == f"pasar-{name}"


def test_the_migration_job_migrates_every_database() -> None:
    job = container(rendered("production"), "Job", "pasar-migrate")
    context = serve_context(job["args"])
    assert context.command.name == "migrate"
    assert sorted(context.params["services"]) == sorted(DATABASE_SERVICES)


def test_every_users_replica_signs_with_the_key_from_one_secret() -> None:
    docs = rendered("production")
    env = {e["name"]: e for e in container(docs, "Deployment", "users")["env"]}
    for variable, key in (("USERS_SIGNING_KEY_PEM", "pem"), ("USERS_SIGNING_KEY_ID", "kid")):
        assert variable in settings_fields(SERVICES["users"])
        assert env[variable]["valueFrom"]["secretKeyRef"] == {
            "name": "pasar-signing-key",
            "key": key,
        }
    assert set(example_secrets()["pasar-signing-key"]) == {"pem", "kid"}


def test_products_replicas_share_a_read_write_many_image_volume() -> None:
    docs = rendered("production")
    image_dir = named(docs, "ConfigMap", "pasar-config")["data"]["PRODUCTS_IMAGE_DIR"]
    mounts = {
        m["name"]: m["mountPath"] for m in container(docs, "Deployment", "products")["volumeMounts"]
    }
    assert mounts["images"] == image_dir
    pod = named(docs, "Deployment", "products")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "images"]
    claim = named(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def ingress_route(docs: tuple[Doc, ...], path: str) -> tuple[str, str] | None:
    """Where ingress-nginx sends ``path``: regex paths (use-regex) first, then prefixes;
    the service and the path it gets (rewrite-target applied)."""
    candidates: list[tuple[int, str, str]] = []
    for ingress in of_kind(docs, "Ingress"):
        notes = ingress["metadata"].get("annotations", {})
        for rule in ingress["spec"]["rules"]:
            for entry in rule["http"]["paths"]:
                service = entry["backend"]["service"]["name"]
                if entry["pathType"] == "ImplementationSpecific":
                    match = re.match(entry["path"], path)
                    if match:
                        target = notes["nginx.ingress.kubernetes.io/rewrite-target"]
                        candidates.append((1000, service, match.expand(target.replace("$", "\\"))))
                elif path.startswith(entry["path"]):
                    candidates.append((len(entry["path"]), service, path))
    if not candidates:
        return None
    _, service, forwarded = max(candidates)
    return service, forwarded


@pytest.mark.parametrize("name", ("users", "products", "orders"))
def test_ingress_routes_match_the_gateway_and_leave_internal_routes_out(name: str) -> None:
    docs = rendered("production")
    for path in app_paths(name):
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        answer = ingress_route(docs, f"/api/{name}{concrete}")
        if path.startswith(("/internal", "/metrics")):
            assert answer is not None and answer[0] == "web", path  # the storefront's 404
        else:
            assert answer == (name, concrete), path
    assert ingress_route(docs, "/") == ("web", "/")
    assert ingress_route(docs, "/products/x1") == ("web", "/products/x1")


def allowed_from(docs: tuple[Doc, ...], name: str) -> set[str]:
    """The pasar components whose pods a NetworkPolicy lets reach ``name``'s pods."""
    sources: set[str] = set()
    for policy in of_kind(docs, "NetworkPolicy"):
        selected = policy["spec"]["podSelector"].get("matchLabels", {})
        if selected.get("app.kubernetes.io/component") != name:
            continue
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                if "namespaceSelector" in peer:
                    sources.add("ingress-controller")
                elif "app.kubernetes.io/component" in labels:
                    sources.add(labels["app.kubernetes.io/component"])
    return sources


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_follow_who_calls_whom(overlay: str) -> None:
    docs = rendered(overlay)
    deny = named(docs, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert allowed_from(docs, "web") == {"ingress-controller"}
    # products reads token revocations from users; orders calls both internal APIs.
    assert allowed_from(docs, "users") == {"ingress-controller", "web", "orders", "products"}
    assert allowed_from(docs, "products") == {"ingress-controller", "web", "orders"}
    assert allowed_from(docs, "orders") == {"ingress-controller", "web"}
    database = named(docs, "NetworkPolicy", "pasar-database")
    (expression,) = database["spec"]["podSelector"]["matchExpressions"]
    assert sorted(expression["values"]) == sorted([*DATABASE_SERVICES, "migrate"])
    # Only that policy opens the database ports.
    for policy in of_kind(docs, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if ports & {3306, 5432}:
                assert policy["metadata"]["name"] == "pasar-database"
