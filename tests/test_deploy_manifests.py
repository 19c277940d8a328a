"""The platform's Kubernetes manifests (``deploy/``) are valid and run the real thing.

Every manifest listed in ``deploy/base/kustomization.yaml`` (and the ConfigMap its
``configMapGenerator`` makes of ``plugins.toml``) is loaded into the official client's models
(``kubernetes`` 37.x) strictly: serializing the model again must give back the YAML, so a
misspelled field (which the models drop silently) fails. Then the invariants the docs promise
(docs/scaling.md, "On Kubernetes") are checked against the platform itself: the commands parse
with ``platformctl``'s own command line, the ConfigMap's ``plugins.toml`` loads with the
platform's config loader and boots every plugin, the grace periods cover the drain. Finally
everything is applied to the kmock Kubernetes emulator and read back. No kustomize binary is
needed; when ``kubectl`` is installed, its kustomize renders the base and the example overlay
and the result must match.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import typer
import yaml
from kmock._internal import parsing
from kubernetes import client as sync_client
from kubernetes.aio import client
from kubernetes.utils import parse_quantity

from platform_core.app import boot
from platform_core.config import load_config
from platform_core.errors import ConfigError
from platform_core.manager import discover
from platform_core.testing import fresh_database
from platformctl.main import load_core_command

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "base"
OVERLAY = ROOT / "deploy" / "overlays" / "example"
NAMESPACE = "platform"

# kind -> (model, API class, the name part of its create_/read_/list_namespaced_* methods);
# the synchronous and the asyncio clients have their own model classes of the same names.
KINDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("v1", "ServiceAccount"): ("V1ServiceAccount", "CoreV1Api", "service_account"),
    ("v1", "Secret"): ("V1Secret", "CoreV1Api", "secret"),
    ("v1", "ConfigMap"): ("V1ConfigMap", "CoreV1Api", "config_map"),
    ("v1", "Service"): ("V1Service", "CoreV1Api", "service"),
    ("apps/v1", "Deployment"): ("V1Deployment", "AppsV1Api", "deployment"),
    ("batch/v1", "Job"): ("V1Job", "BatchV1Api", "job"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): (
        "V2HorizontalPodAutoscaler",
        "AutoscalingV2Api",
        "horizontal_pod_autoscaler",
    ),
    ("policy/v1", "PodDisruptionBudget"): (
        "V1PodDisruptionBudget",
        "PolicyV1Api",
        "pod_disruption_budget",
    ),
}
SERIALIZER = sync_client.ApiClient()


# -- loading the base as kustomize would ---------------------------------------------------


def kustomization(directory: Path) -> dict[str, Any]:
    """The parsed ``kustomization.yaml`` of ``directory``."""
    return yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))


def load_base() -> list[dict[str, Any]]:
    """The objects of the base: its resources, then the generated ConfigMaps (unhashed names)."""
    kust = kustomization(BASE)
    docs = []
    for name in kust["resources"]:
        text = (BASE / name).read_text(encoding="utf-8")
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    for generator in kust.get("configMapGenerator", []):
        data = {}
        for file in generator["files"]:
            data[Path(file).name] = (BASE / file).read_text(encoding="utf-8")
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return docs


def model_of(doc: dict[str, Any], models: Any = sync_client) -> Any:
    """``doc`` as an instance of the official client's model of its kind."""
    model, _, _ = KINDS[(doc["apiVersion"], doc["kind"])]
    return getattr(models, model).from_dict(doc)


DOCS = load_base()


def objects(kind: str) -> dict[str, dict[str, Any]]:
    """The base's objects of ``kind`` by name."""
    return {d["metadata"]["name"]: d for d in DOCS if d["kind"] == kind}


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) of every Deployment and Job."""
    for kind in ("Deployment", "Job"):
        for name, doc in objects(kind).items():
            yield name, doc["spec"]["template"]["spec"]


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload/container, container) of every container and init container."""
    for name, spec in pod_templates():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{name}/{container['name']}", container


def the_container(workload: str) -> dict[str, Any]:
    """The one container of a Deployment or Job."""
    spec = dict(pod_templates())[workload]
    assert len(spec["containers"]) == 1
    return spec["containers"][0]


def parse_command(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``argv`` with platformctl's own command line: (command path, its options).

    Unknown commands or options and out-of-range values raise, as they would in the pod.
    """
    assert argv[0] == "platformctl", argv
    name, rest = argv[1], argv[2:]
    command = load_core_command(name)
    path = [name]
    ctx = command.make_context(name, list(rest))
    while hasattr(command, "resolve_command"):  # a group: typer vendors its own click
        pending = [*getattr(ctx, "_protected_args", []), *ctx.args]
        sub, found, rest = command.resolve_command(ctx, pending)
        assert sub is not None and found is not None, argv
        command = found
        path.append(sub)
        ctx = command.make_context(sub, list(rest), parent=ctx)
    return " ".join(path), dict(ctx.params)


def pod_environment(container: dict[str, Any], secret_values: dict[str, str]) -> dict[str, str]:
    """The container's environment, secret references resolved from ``secret_values``."""
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secret_values[ref["key"]]
    return env


def config_file_of(container: dict[str, Any], spec: dict[str, Any]) -> Path:
    """The base's file that the container sees at ``$PLATFORM_CONFIG``, via its ConfigMap."""
    env = {v["name"]: v.get("value") for v in container.get("env", [])}
    config_path = Path(env["PLATFORM_CONFIG"])
    mount = next(m for m in container["volumeMounts"] if config_path.parent == Path(m["mountPath"]))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    configmap = objects("ConfigMap")[volume["configMap"]["name"]]
    assert config_path.name in configmap["data"]
    generator = next(
        g
        for g in kustomization(BASE)["configMapGenerator"]
        if g["name"] == volume["configMap"]["name"]
    )
    return BASE / next(f for f in generator["files"] if Path(f).name == config_path.name)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``PLATFORM_*`` variable of the test run leaks into the configurations loaded."""
    for key in [k for k in os.environ if k.startswith("PLATFORM_")]:
        monkeypatch.delenv(key)
    return monkeypatch


def real_like_secrets() -> dict[str, str]:
    """Values an operator would put in the Secret (a fresh key; hosts as in the docs)."""
    return {
        "PLATFORM_DATABASE_URL": "postgresql+asyncpg://platform:pw@postgres:5432/platform",
        "PLATFORM_SECRET_KEY": secrets.token_urlsafe(48),
        "PLATFORM_JOBS__BROKER_URL": "redis://:pw@redis:6379/0",
    }


# -- the manifests themselves -----------------------------------------------------------


def test_the_kustomization_uses_only_what_these_tests_understand():
    # A transformer these tests do not apply (namePrefix, labels, patches, images...) would
    # make them check something else than what kustomize renders: put those in overlays.
    kust = kustomization(BASE)
    assert set(kust) <= {"apiVersion", "kind", "resources", "configMapGenerator"}
    for generator in kust["configMapGenerator"]:
        assert set(generator) <= {"name", "files"}
    listed = {str(name) for name in kust["resources"]}
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, "every manifest file of the base is listed, and only those"


def test_every_manifest_loads_strictly_into_the_official_models():
    kinds = {(d["apiVersion"], d["kind"]) for d in DOCS}
    assert kinds == set(KINDS)
    for doc in DOCS:
        model = model_of(doc)
        # The models drop unknown keys silently: a typo (readinesProbe) must not pass.
        assert SERIALIZER.sanitize_for_serialization(model) == doc, doc["metadata"]["name"]
    names = [(d["kind"], d["metadata"]["name"]) for d in DOCS]
    assert len(names) == len(set(names))


def test_a_misspelled_field_is_caught_by_the_strict_load():
    doc = yaml.safe_load((BASE / "api-deployment.yaml").read_text(encoding="utf-8"))
    doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert SERIALIZER.sanitize_for_serialization(model_of(doc)) != doc


def test_the_containers_run_real_platformctl_commands_of_the_image():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    expected = {
        "platform-api": "serve",
        "platform-worker": "worker",
        "platform-scheduler": "scheduler",
        "platform-migrate": "db upgrade",
    }
    assert set(objects("Deployment")) | set(objects("Job")) == set(expected)
    for workload, command in expected.items():
        container = the_container(workload)
        assert parse_command(container["command"])[0] == command
        assert container["image"].split(":")[0] == "platform"  # docker build -t platform .
    serve = parse_command(the_container("platform-api")["command"])[1]
    assert serve["host"] == "0.0.0.0"
    assert serve["migrate"] is False  # the Job migrates
    assert f"EXPOSE {serve['port']}" in dockerfile


def test_a_wrong_option_is_refused_by_the_command_line_check():
    with pytest.raises(typer.TyperException, match="No such option"):
        parse_command(["platformctl", "worker", "--concurency", "4"])
    with pytest.raises(typer.TyperException, match="greater than or equal to 1"):
        parse_command(["platformctl", "worker", "--concurrency", "0"])
    with pytest.raises(typer.TyperException, match="upgrad"):
        parse_command(["platformctl", "db", "upgrad"])


def test_the_api_probes_readyz_and_healthz_on_its_port():
    api = the_container("platform-api")
    port = parse_command(api["command"])[1]["port"]
    assert api["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # /readyz's checks time out after 2 s each: the probe waits longer than that.
    assert api["readinessProbe"]["timeoutSeconds"] > 2
    (service,) = objects("Service").values()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    template_labels = objects("Deployment")["platform-api"]["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= template_labels["labels"].items()


def test_the_api_is_scaled_by_an_autoscaling_v2_hpa_only():
    api = objects("Deployment")["platform-api"]
    assert "replicas" not in api["spec"], "re-applying would reset the autoscaler's count"
    (hpa,) = objects("HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "platform-api",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # A CPU utilization target means nothing without a CPU request.
    assert "cpu" in the_container("platform-api")["resources"]["requests"]
    # Rolling updates never lower the number of ready API pods.
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_two_schedulers_and_workers_with_disruption_budgets():
    deployments = objects("Deployment")
    assert deployments["platform-scheduler"]["spec"]["replicas"] == 2
    assert deployments["platform-worker"]["spec"]["replicas"] >= 2
    budgets = objects("PodDisruptionBudget")
    assert budgets["platform-scheduler"]["spec"] == {
        "minAvailable": 1,
        "selector": deployments["platform-scheduler"]["spec"]["selector"],
    }
    for name in ("platform-api", "platform-worker", "platform-scheduler"):
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        others = [d for n, d in deployments.items() if n != name]
        assert not any(
            selector.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in others
        ), f"{name}'s budget selects another workload's pods"


def test_every_container_has_cpu_and_memory_requests_within_limits():
    for name, container in containers():
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = parse_quantity(resources["requests"][resource])
            limit = parse_quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{name} {resource}"
    # Measured: an idle serve, worker or scheduler of these plugins holds 115-130 MB.
    for name, container in containers():
        assert parse_quantity(container["resources"]["limits"]["memory"]) >= 256 * 2**20, name


def test_every_pod_runs_restricted():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for name, spec in pod_templates():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert f"USER {pod['runAsUser']}:{pod['runAsGroup']}" in dockerfile, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] in objects("ServiceAccount"), name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert key not in spec, name
        for volume in spec["volumes"]:
            assert set(volume) - {"name"} <= {"configMap", "emptyDir", "secret"}, name
    for name, container in containers():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context.get("privileged") is not True, name


def test_every_referenced_secret_and_configmap_exists():
    secrets_by_name = objects("Secret")
    configmaps = objects("ConfigMap")
    for name, spec in pod_templates():
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, name
        for container in spec["containers"]:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = secrets_by_name[ref["name"]]
                    assert ref["key"] in secret["stringData"], f"{name}: {ref}"
            assert "envFrom" not in container, name
            config_file_of(container, spec)  # PLATFORM_CONFIG is on the ConfigMap's mount
    # Every pod gets the same secrets: one secret key, one database, one Redis.
    wanted = {"PLATFORM_DATABASE_URL", "PLATFORM_SECRET_KEY", "PLATFORM_JOBS__BROKER_URL"}
    for name, container in containers():
        refs = {v["name"] for v in container["env"] if "valueFrom" in v}
        assert refs == wanted, name


def test_the_configmap_plugins_toml_loads_and_boots_every_plugin(clean_env):
    installed = set(discover())
    for name, spec in pod_templates():
        container = spec["containers"][0]
        for key, value in pod_environment(container, real_like_secrets()).items():
            clean_env.setenv(key, value)
        clean_env.setenv("PLATFORM_CONFIG", str(config_file_of(container, spec)))
        cfg = load_config()
        assert cfg.core.database_url.startswith("postgresql+asyncpg://"), name
        assert cfg.core.jobs.broker_url, f"{name}: workers and schedulers need the broker"
        assert cfg.core.strict is True
        assert set(cfg.enabled) <= installed, "every enabled plugin is in the image"
        ctx = boot(cfg)  # strict: raises when a plugin (or its settings) fails
        assert ctx.plugins.failures() == {}
        assert {r.name for r in ctx.plugins.active_records()} - {"core"} == set(cfg.enabled)


def test_the_placeholder_secret_is_refused_naming_its_variable(clean_env):
    placeholder = next(iter(objects("Secret").values()))["stringData"]
    container = the_container("platform-api")
    for key, value in pod_environment(container, placeholder).items():
        clean_env.setenv(key, value)
    clean_env.setenv("PLATFORM_CONFIG", str(BASE / "plugins.toml"))
    with pytest.raises(ConfigError, match="PLATFORM_SECRET_KEY"):
        load_config()


def test_termination_grace_covers_the_drain_and_the_running_jobs(clean_env):
    for key, value in real_like_secrets().items():
        clean_env.setenv(key, value)
    shutdown = load_config(BASE / "plugins.toml").core.shutdown
    specs = dict(pod_templates())
    api = specs["platform-api"]
    assert shutdown.drain_seconds >= 5, "endpoint removal needs a few seconds to propagate"
    assert api["terminationGracePeriodSeconds"] > shutdown.drain_seconds + shutdown.grace_seconds
    assert "lifecycle" not in the_container("platform-api"), "the drain replaces a preStop"
    for workload in ("platform-worker", "platform-scheduler"):
        options = parse_command(the_container(workload)["command"])[1]
        assert specs[workload]["terminationGracePeriodSeconds"] > options["grace"], workload
    worker = parse_command(the_container("platform-worker")["command"])[1]
    # A stopping worker's grace lets a job finish; the lease then covers the hand-back.
    assert worker["grace"] < specs["platform-worker"]["terminationGracePeriodSeconds"]


def test_the_migration_job_upgrades_once_and_goes_away():
    (job,) = objects("Job").values()
    spec = job["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert 1 <= spec["backoffLimit"] <= 6
    assert spec["ttlSecondsAfterFinished"] > 0
    env = {v["name"]: v.get("value") for v in the_container("platform-migrate")["env"]}
    # A migration may take long; the server's 10 s statement timeout would stop it.
    assert float(env["PLATFORM_DATABASE__STATEMENT_TIMEOUT_SECONDS"]) >= 600


def test_peak_database_connections_fit_what_the_docs_say():
    # docs/scaling.md sizes PostgreSQL's max_connections from these numbers.
    per_process = 5 + 10  # SQLAlchemy's pool: 5 kept plus 10 overflow, per process
    deployments = objects("Deployment")
    hpa = objects("HorizontalPodAutoscaler")["platform-api"]["spec"]
    processes = 0
    for name, doc in deployments.items():
        replicas = hpa["maxReplicas"] if name == "platform-api" else doc["spec"]["replicas"]
        processes += replicas + doc["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    processes += 1  # the migration Job
    peak = processes * per_process
    scaling = " ".join((ROOT / "docs" / "scaling.md").read_text(encoding="utf-8").split())
    assert f"{processes} processes" in scaling and f"{peak} connections" in scaling


# -- applied to the Kubernetes emulator ---------------------------------------------------


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    """kmock 0.8 fails on ``/api/v1/namespaces[/<name>]``: the cluster-scoped resource."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        name = parts[3] if len(parts) == 4 else None
        return parsing.ParsedPath("", "v1", "namespaces", None, name, None)
    return _ORIGINAL_PARSE_PATH(path)


_ORIGINAL_PARSE_PATH = parsing.parse_path


async def test_every_manifest_applies_to_the_emulator_and_reads_back(monkeypatch):
    monkeypatch.setattr(parsing, "parse_path", _parse_path_with_namespaces)
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
        config = client.Configuration(host=str(server.url))
        async with client.ApiClient(config) as api:
            core = client.CoreV1Api(api)
            await core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
            )
            for doc in DOCS:
                _, api_class, noun = KINDS[(doc["apiVersion"], doc["kind"])]
                endpoint = getattr(client, api_class)(api)
                create = getattr(endpoint, f"create_namespaced_{noun}")
                await create(NAMESPACE, model_of(doc, client))
            for doc in DOCS:
                _, api_class, noun = KINDS[(doc["apiVersion"], doc["kind"])]
                endpoint = getattr(client, api_class)(api)
                read = getattr(endpoint, f"read_namespaced_{noun}")
                back = await read(doc["metadata"]["name"], NAMESPACE)
                assert api.sanitize_for_serialization(back) == doc
                listed = await getattr(endpoint, f"list_namespaced_{noun}")(NAMESPACE)
                assert doc["metadata"]["name"] in {i.metadata.name for i in listed.items}
            # Applying the same manifests again without deleting them is a conflict, as on a
            # real API server (kubectl apply patches instead).
            secret = model_of(objects("Secret")["platform-secrets"], client)
            with pytest.raises(client.ApiException) as conflict:
                await core.create_namespaced_secret(NAMESPACE, secret)
            assert conflict.value.status == 409
            namespaces = await core.list_namespace()
            assert NAMESPACE in {n.metadata.name for n in namespaces.items if n.metadata}
        stored = {(ns, name) for _, ns, name in emulator.objects}
        assert stored == {(NAMESPACE, d["metadata"]["name"]) for d in DOCS} | {(None, NAMESPACE)}
        assert len(emulator.objects) == len(DOCS) + 1  # and the namespace


# -- the example overlay --------------------------------------------------------------------


def test_the_example_overlay_builds_on_the_base_and_its_config_loads(clean_env):
    kust = kustomization(OVERLAY)
    assert "../../base" in kust["resources"]
    for name in kust["resources"]:
        assert (OVERLAY / name).exists(), name
    for patch in kust.get("patches", []):
        patched = yaml.safe_load((OVERLAY / patch["path"]).read_text(encoding="utf-8"))
        assert patched["metadata"]["name"] in objects(patched["kind"]), patch
    (generator,) = kust["secretGenerator"]
    assert generator["name"] in objects("Secret") and generator["behavior"] == "replace"
    example = dict(
        line.split("=", 1)
        for line in (OVERLAY / "secrets.env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert set(example) == set(next(iter(objects("Secret").values()))["stringData"])
    assert "secrets.env" in (ROOT / ".gitignore").read_text(encoding="utf-8")
    for key, value in real_like_secrets().items():
        clean_env.setenv(key, value)
    cfg = load_config(OVERLAY / "plugins.toml")
    assert cfg.core.trusted_proxies and cfg.core.strict
    ctx = boot(cfg)
    assert ctx.plugins.failures() == {}
    # The example's secret key is a placeholder the platform refuses too.
    clean_env.setenv("PLATFORM_SECRET_KEY", example["PLATFORM_SECRET_KEY"])
    with pytest.raises(ConfigError, match="PLATFORM_SECRET_KEY"):
        load_config(OVERLAY / "plugins.toml")
    toml = tomllib.loads((OVERLAY / "plugins.toml").read_text(encoding="utf-8"))
    base = tomllib.loads((BASE / "plugins.toml").read_text(encoding="utf-8"))
    assert toml["core"]["shutdown"] == base["core"]["shutdown"], "the grace periods rely on it"


KUBECTL = shutil.which("kubectl")


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) not installed")
def test_kubectl_kustomize_renders_what_these_tests_check(tmp_path):
    rendered = _kustomize(BASE)
    hashed = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ConfigMap"}
    (configmap_name,) = hashed
    assert configmap_name.startswith("platform-config-")

    def unhash(doc: Any) -> Any:
        if isinstance(doc, dict):
            return {k: unhash(v) for k, v in doc.items()}
        if isinstance(doc, list):
            return [unhash(v) for v in doc]
        return "platform-config" if doc == configmap_name else doc

    def canonical(docs: list[Any]) -> list[str]:
        return sorted(json.dumps(d, sort_keys=True) for d in docs)

    assert canonical([unhash(d) for d in rendered]) == canonical(DOCS)
    # The overlay renders too (with the example secrets), into valid objects.
    copy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", copy)
    example = copy / "overlays" / "example"
    shutil.copy(example / "secrets.env.example", example / "secrets.env")
    overlay = _kustomize(example)
    for doc in overlay:
        if doc["kind"] == "Namespace":
            continue
        assert doc["metadata"]["namespace"] == NAMESPACE
        assert SERIALIZER.sanitize_for_serialization(model_of(doc)) == doc
    secret = next(d for d in overlay if d["kind"] == "Secret")
    assert base64.b64decode(secret["data"]["PLATFORM_SECRET_KEY"]) == b"CHANGE-ME"
    images = {
        c["image"]
        for d in overlay
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.org/platform:0.1.0"}


# -- the manifests' commands, run for real ----------------------------------------------------

REDIS = "redis://127.0.0.1:6379/0"


def _argv(container: dict[str, Any], port: int | None = None) -> list[str]:
    """The container's command with this environment's platformctl (and a free port)."""
    argv = [str(Path(sys.executable).parent / "platformctl"), *container["command"][1:]]
    if port is not None:
        argv[argv.index("--port") + 1] = str(port)
    return argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.2)


async def test_the_pods_commands_run_on_postgresql_and_redis_and_stop_in_time(tmp_path):
    """The Job, API, worker and scheduler commands with the ConfigMap's plugins.toml and the
    Secret's variables: serve refuses before the Job migrated, then every process starts,
    the probes' paths answer, and SIGTERM drains the API and stops all within the pods'
    terminationGracePeriodSeconds."""
    specs = dict(pod_templates())
    mount = tmp_path / "etc-platform"  # the ConfigMap's volume
    mount.mkdir()
    (configmap,) = objects("ConfigMap").values()
    for key, value in configmap["data"].items():
        (mount / key).write_text(value, encoding="utf-8")
    run = uuid.uuid4().hex[:10]
    async with fresh_database("postgresql", tmp_path) as url:
        values = {
            "PLATFORM_DATABASE_URL": url,
            "PLATFORM_SECRET_KEY": secrets.token_urlsafe(48),
            "PLATFORM_JOBS__BROKER_URL": f"{REDIS}?queue=deploy-test-{run}",
        }

        def environment(workload: str) -> dict[str, str]:
            env = pod_environment(the_container(workload), values)
            env["PLATFORM_CONFIG"] = str(mount / Path(env["PLATFORM_CONFIG"]).name)
            # Shared test Redis: this run's keys and channels only (not a pod setting).
            env["PLATFORM_REDIS__PREFIX"] = f"deploy-test-{run}"
            # Nothing of the test run's own PLATFORM_* settings reaches the pods.
            inherited = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
            return {**inherited, **env}

        def start(workload: str, port: int | None = None) -> subprocess.Popen[bytes]:
            log = (tmp_path / f"{workload}.log").open("wb")
            return subprocess.Popen(
                _argv(the_container(workload), port),
                env=environment(workload),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def output(workload: str) -> str:
            return (tmp_path / f"{workload}.log").read_text(encoding="utf-8", errors="replace")

        # Before the migration Job: serve refuses to start (the pod restarts until it ran).
        early = start("platform-api", _free_port())
        assert early.wait(120) != 0
        assert "pending migrations" in output("platform-api")

        job = start("platform-migrate")
        assert job.wait(300) == 0, output("platform-migrate")

        port = _free_port()
        api = the_container("platform-api")
        base = f"http://127.0.0.1:{port}"
        processes = {
            "platform-api": start("platform-api", port),
            "platform-worker": start("platform-worker"),
            "platform-scheduler": start("platform-scheduler"),
        }
        try:
            async with httpx.AsyncClient(timeout=5) as http:

                async def ready() -> bool:
                    for name, proc in processes.items():
                        assert proc.poll() is None, output(name)
                    try:
                        probe = await http.get(base + api["readinessProbe"]["httpGet"]["path"])
                    except httpx.TransportError:
                        return False
                    return probe.status_code == 200 and all(
                        " started" in output(n) for n in ("platform-worker", "platform-scheduler")
                    )

                await _wait_for(ready, 120, "the pods did not become ready")
                live = await http.get(base + api["livenessProbe"]["httpGet"]["path"])
                assert live.status_code == 200
                started = time.monotonic()
                for proc in processes.values():
                    proc.send_signal(signal.SIGTERM)
                draining = await http.get(base + api["readinessProbe"]["httpGet"]["path"])
                assert draining.status_code == 503
                assert draining.json()["status"] == "draining"
                # Still serving meanwhile: what a preStop sleep would otherwise provide.
                live = await http.get(base + api["livenessProbe"]["httpGet"]["path"])
                assert live.status_code == 200
                for name, proc in processes.items():
                    allowed = specs[name]["terminationGracePeriodSeconds"]
                    left = allowed - (time.monotonic() - started)
                    assert proc.wait(max(left, 0.1)) == 0, output(name)
        finally:
            for proc in processes.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            import redis.asyncio as aioredis

            async with aioredis.from_url(REDIS) as r:
                keys = [k async for k in r.scan_iter(f"deploy-test-{run}*")]
                if keys:
                    await r.delete(*keys)
