"""The container files, checked without a Docker engine.

The Dockerfile is linted with hadolint and read instruction by instruction;
docker-compose.yml and deploy/nginx.conf are parsed and held to what the
service needs (replicas behind nginx, the service's body limit, timeouts
above gunicorn's, the request id passed through); gunicorn.conf.py is loaded
as gunicorn loads it, under chosen environment variables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from gunicorn.config import Config as GunicornConfig

from initlab.web.app import create_app
from initlab.web.config import DEFAULT_MAX_BODY_BYTES, Config
from initlab.web.problems import BODY_TOO_LARGE, PROBLEM_TYPE_BASE

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
GUNICORN_CONF = REPO_ROOT / "service" / "gunicorn.conf.py"
NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"
SERVICE = "initlab"
SERVICE_PORT = "8000"


# -- reading the files -------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages, each a list of (INSTRUCTION, arguments).

    Continuation lines are joined and comments dropped, as Docker does.
    """
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue

        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue

        keyword, _, arguments = (logical + line).strip().partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))

    return stages


def instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for name, arguments in stage if name == keyword]


def makefile_serve_command() -> list[str]:
    """The serve target's recipe, with the virtualenv's bin prefix removed."""
    lines = (REPO_ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("serve:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())

    assert len(recipe) == 1, f"serve should run one command, runs {recipe}"
    return shlex.split(recipe[0].replace("$(BIN)/", ""))


def nginx_directives(name: str) -> list[list[str]]:
    """The arguments of every ``name`` directive in nginx.conf, comments dropped."""
    text = "\n".join(line.split("#")[0] for line in NGINX_CONF.read_text().splitlines())
    pattern = rf"(?:^|[;{{}}]|\s){re.escape(name)}\s+([^;{{]*);"
    return [match.split() for match in re.findall(pattern, text, re.MULTILINE)]


def nginx_block(header: str) -> str:
    """The text between the braces that follow ``header`` (one nesting level)."""
    text = NGINX_CONF.read_text()
    start = text.index(header)
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening + 1 : index]

    raise AssertionError(f"unbalanced braces after {header!r} in nginx.conf")


def nginx_size_bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    suffix = size[-1].lower()
    return int(size[:-1]) * units[suffix] if suffix in units else int(size)


def nginx_seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", duration).groups()
    return int(number) * units[unit or "s"]


def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def load_gunicorn_conf(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> tuple[ModuleType, dict[str, str]]:
    """Execute gunicorn.conf.py with ``environ`` as the whole environment.

    Returns the module and the environment as the file left it.
    """
    environment = dict(environ)
    monkeypatch.setattr(os, "environ", environment)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", GUNICORN_CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, environment


def gunicorn_settings(module: ModuleType) -> dict[str, object]:
    """The names gunicorn takes from a config file: its public, non-module names."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name != "annotations"
    }


# -- Dockerfile ----------------------------------------------------------------


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    # A clean HOME and XDG_CONFIG_HOME, so that no personal config ignores rules.
    environment = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }

    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_cmd_is_the_makefile_serve_command(serve_command) -> None:
    runtime = dockerfile_stages()[-1]
    (cmd,) = instructions(runtime, "CMD")
    container_command = json.loads(cmd)  # exec form: a JSON array
    workdir = instructions(runtime, "WORKDIR")[-1]
    make_command = makefile_serve_command()

    assert make_command == list(serve_command)
    assert container_command[0] == make_command[0] == "gunicorn"
    assert container_command[1] == make_command[1] == "--config"
    assert container_command[2] == posixpath.join(workdir, make_command[2])
    assert container_command[3:] == make_command[3:] == ["initlab.web.wsgi:app"]


def test_dockerfile_copies_the_gunicorn_config_where_cmd_reads_it() -> None:
    runtime = dockerfile_stages()[-1]
    config_path = json.loads(instructions(runtime, "CMD")[0])[2]

    copies = [arguments.split() for arguments in instructions(runtime, "COPY")]

    assert ["service/gunicorn.conf.py", config_path] in copies


def test_dockerfile_builds_a_venv_and_runs_it_as_non_root() -> None:
    builder, runtime = dockerfile_stages()
    builder_from = instructions(builder, "FROM")[0].split()
    runtime_from = instructions(runtime, "FROM")[0].split()
    builder_runs = " ".join(instructions(builder, "RUN"))
    user = instructions(runtime, "USER")[-1]

    assert builder_from == ["python:3.11-slim", "AS", "builder"]
    assert runtime_from == ["python:3.11-slim"]
    assert "--requirement requirements/service.txt" in builder_runs
    assert "--no-deps ./service" in builder_runs
    assert "--from=builder /opt/venv /opt/venv" in instructions(runtime, "COPY")
    assert user.split(":")[0] not in ("root", "0")
    assert "BIND=0.0.0.0:8000" in " ".join(instructions(runtime, "ENV"))
    assert instructions(runtime, "EXPOSE") == [SERVICE_PORT]


def test_dockerfile_healthcheck_uses_python_urllib_on_healthz() -> None:
    (healthcheck,) = instructions(dockerfile_stages()[-1], "HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    program = json.loads(command)

    assert program[:2] == ["python", "-c"]
    assert "urllib.request" in program[2]
    assert "/healthz" in program[2]
    assert "--timeout=" in options and "--interval=" in options


@pytest.mark.server
def test_dockerfile_healthcheck_passes_on_a_live_server_and_fails_without(
    live_server_url: str,
) -> None:
    (healthcheck,) = instructions(dockerfile_stages()[-1], "HEALTHCHECK")
    code = json.loads(healthcheck.partition(" CMD ")[2])[2]
    port = live_server_url.rpartition(":")[2]

    def check(bind: str) -> int:
        environment = {**os.environ, "BIND": bind}
        return subprocess.run(
            [sys.executable, "-c", code], env=environment, capture_output=True
        ).returncode

    assert check(f"0.0.0.0:{port}") == 0
    assert check("0.0.0.0:1") != 0  # nothing listens on port 1


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    allowed = [pattern[1:] for pattern in patterns if pattern.startswith("!")]
    sources = [
        arguments.split()[0]
        for stage in dockerfile_stages()
        for arguments in instructions(stage, "COPY")
        if not arguments.startswith("--from")
    ]

    assert patterns[0] == "*"  # everything else (.venv, .git, tests) stays out
    for source in sources:
        assert any(
            source == pattern or source.startswith(pattern.rstrip("/") + "/")
            for pattern in allowed
        ), f"COPY {source} is excluded by .dockerignore"


# -- docker-compose.yml and nginx ----------------------------------------------


def test_compose_runs_three_replicas_behind_nginx() -> None:
    services = compose()["services"]
    service, nginx = services[SERVICE], services["nginx"]

    assert set(services) == {SERVICE, "nginx"}
    assert service["build"] == "."
    assert service["deploy"]["replicas"] == 3
    assert "ports" not in service  # replicas cannot share a host port
    assert service["expose"] == [SERVICE_PORT]
    assert [port.split(":")[-1] for port in nginx["ports"]] == ["80"]
    assert nginx["depends_on"][SERVICE]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(nginx["healthcheck"]["test"])


def test_compose_mounts_the_repository_nginx_conf() -> None:
    nginx = compose()["services"]["nginx"]
    mounts = [volume.split(":") for volume in nginx["volumes"]]

    assert ["./deploy/nginx.conf", "/etc/nginx/nginx.conf", "ro"] in mounts
    assert NGINX_CONF.is_file()


def test_nginx_proxies_to_the_compose_service() -> None:
    upstream = nginx_block("upstream initlab")
    servers = re.findall(r"^\s*server\s+([^;\s]+)", upstream, re.MULTILINE)

    assert servers == [f"{SERVICE}:{SERVICE_PORT}"]
    assert ["http://initlab"] in nginx_directives("proxy_pass")
    assert nginx_block("http").count("{") == nginx_block("http").count("}")


def test_nginx_body_limit_is_the_service_body_limit() -> None:
    environment = compose()["services"][SERVICE].get("environment", {})
    (limit,) = nginx_directives("client_max_body_size")

    assert "INITLAB_MAX_BODY_BYTES" not in environment
    assert nginx_size_bytes(limit[0]) == DEFAULT_MAX_BODY_BYTES == 1024 * 1024


def test_nginx_waits_for_a_turn_and_a_minute_of_computing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Threaded workers never cut a request off: the proxy must outwait the
    # gate's longest wait for a turn and a computation sharing its core.
    environment = compose()["services"][SERVICE]["environment"]
    load_gunicorn_conf(monkeypatch, environment)
    wait = Config.from_environ(environment).computation_wait_seconds

    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = nginx_directives(directive)
        assert nginx_seconds(value[0]) >= wait + 60 == 90, directive


def test_nginx_sends_a_busy_replicas_requests_to_another() -> None:
    (policy,) = nginx_directives("proxy_next_upstream")

    assert policy == ["error", "http_503", "non_idempotent"]
    assert nginx_directives("proxy_next_upstream_tries") == [["3"]]


def test_nginx_passes_the_request_id() -> None:
    headers = {
        arguments[0]: arguments[1] for arguments in nginx_directives("proxy_set_header")
    }
    request_id_map = nginx_block("map $http_x_request_id $initlab_request_id")

    assert headers["X-Request-ID"] == "$initlab_request_id"
    assert "$http_x_request_id" in request_id_map and "$request_id" in request_id_map


@pytest.mark.parametrize(
    ("location", "status", "problem_type"),
    [
        ("@body_too_large", 413, BODY_TOO_LARGE.type),
        ("@service_unavailable", 503, PROBLEM_TYPE_BASE + "service-unavailable"),
    ],
)
def test_nginx_own_errors_are_problem_details(
    location: str, status: int, problem_type: str
) -> None:
    block = nginx_block(f"location {location}")
    code, body = re.search(r"return (\d+) '(.*)';", block).groups()

    body = body.replace("$initlab_request_id", "abc123")
    problem = json.loads(body.replace("$content_length", "2000000"))

    assert int(code) == problem["status"] == status
    assert problem["type"] == problem_type
    assert problem["instance"] == "abc123"
    assert "default_type application/problem+json;" in block
    if status != 413:
        assert problem["errors"] == []
        return
    # The service's own answer to the same body, but its advice to raise the
    # limit (behind nginx, nginx's limit too).
    service = (
        create_app(Config())
        .test_client()
        .post(
            "/v1/recommendations",
            data=b" " * 2_000_000,
            content_type="application/json",
        )
        .get_json()
    )
    assert problem["errors"] == service["errors"]
    assert service["detail"].startswith(problem["detail"].removesuffix("."))


def test_nginx_routes_its_errors_to_those_problems() -> None:
    block = nginx_block("location @body_too_large")
    body = re.search(r"return 413 '(.*)';", block).group(1)

    assert json.loads(body)["title"] == BODY_TOO_LARGE.title
    assert ["413", "@body_too_large"] in nginx_directives("error_page")
    assert ["502", "503", "504", "=503", "@service_unavailable"] in nginx_directives(
        "error_page"
    )


# -- gunicorn.conf.py ------------------------------------------------------------


def test_gunicorn_conf_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    module, environment = load_gunicorn_conf(monkeypatch, {})

    assert module.bind == ["127.0.0.1:8000"]
    assert module.workers == 2
    assert module.worker_class == "gthread"
    assert module.threads == 6
    # A worker accepts only while a thread is free (see the module docstring).
    assert module.worker_connections == module.threads
    assert module.timeout == 60
    assert module.graceful_timeout == 30
    assert module.max_requests == 0
    assert module.max_requests_jitter == 0
    assert module.preload_app is True
    assert module.accesslog is None
    assert module.errorlog == "-"
    assert module.worker_tmp_dir is None
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert environment[variable] == "1"


def test_gunicorn_conf_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    module, environment = load_gunicorn_conf(
        monkeypatch,
        {
            "PORT": "9123",
            "WEB_CONCURRENCY": "5",
            "GUNICORN_TIMEOUT": "120",
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "GUNICORN_WORKER_TMP_DIR": "/dev/shm",
            "GUNICORN_THREADS": "8",
            "GUNICORN_MAX_REQUESTS": "5000",
            "OMP_NUM_THREADS": "4",
        },
    )

    assert module.bind == ["127.0.0.1:9123"]
    assert module.workers == 5
    assert (module.threads, module.worker_connections) == (8, 8)
    assert (module.max_requests, module.max_requests_jitter) == (5000, 500)
    assert module.timeout == 120
    assert module.graceful_timeout == 10
    assert module.worker_tmp_dir == "/dev/shm"
    assert environment["OMP_NUM_THREADS"] == "4"  # a value already set wins
    assert environment["OPENBLAS_NUM_THREADS"] == "1"


def test_gunicorn_conf_bind_wins_over_port(monkeypatch: pytest.MonkeyPatch) -> None:
    module, _ = load_gunicorn_conf(
        monkeypatch, {"BIND": "0.0.0.0:8000", "PORT": "9123"}
    )

    assert module.bind == ["0.0.0.0:8000"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_CONCURRENCY", "two"),
        ("PORT", "-1"),
        ("GUNICORN_TIMEOUT", "0"),
        ("GUNICORN_THREADS", "0"),
    ],
)
def test_gunicorn_conf_refuses_a_bad_number(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # SystemExit: gunicorn prints its one line, where an exception would come
    # with "Failed to read config file" and a traceback.
    with pytest.raises(SystemExit, match=rf"^{variable} must be a positive integer"):
        load_gunicorn_conf(monkeypatch, {variable: value})


def test_gunicorn_conf_allows_zero_max_requests_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, _ = load_gunicorn_conf(monkeypatch, {"GUNICORN_MAX_REQUESTS": "0"})
    assert module.max_requests == 0

    with pytest.raises(SystemExit) as refused:
        load_gunicorn_conf(monkeypatch, {"GUNICORN_MAX_REQUESTS": "-5"})
    assert str(refused.value) == (
        "GUNICORN_MAX_REQUESTS must be 0 (off) or a positive integer; got '-5'."
        " Fix it or unset GUNICORN_MAX_REQUESTS to use the default 0."
    )


@pytest.mark.parametrize(
    ("variable", "value", "most"),
    [("WEB_CONCURRENCY", "100000", 32), ("GUNICORN_THREADS", "65", 64)],
)
def test_gunicorn_conf_refuses_more_processes_or_threads_than_it_bounds(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, most: int
) -> None:
    with pytest.raises(SystemExit) as refused:
        load_gunicorn_conf(monkeypatch, {variable: value})

    assert str(refused.value).startswith(
        f"{variable} must be at most {most}; got {value}."
    )


def test_gunicorn_conf_keeps_a_thread_free_beside_the_gated_computations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2 running + 2 queued by default: 4 threads would leave none for /healthz.
    with pytest.raises(SystemExit) as refused:
        load_gunicorn_conf(monkeypatch, {"GUNICORN_THREADS": "4"})
    assert str(refused.value) == (
        "GUNICORN_THREADS must be above INITLAB_MAX_RUNNING_COMPUTATIONS +"
        " INITLAB_MAX_QUEUED_COMPUTATIONS = 4, so that a worker keeps a thread for"
        " health checks while it computes; got 4. Raise GUNICORN_THREADS or lower"
        " the other two (0 running turns the gate off)."
    )

    module, _ = load_gunicorn_conf(
        monkeypatch,
        {"GUNICORN_THREADS": "4", "INITLAB_MAX_QUEUED_COMPUTATIONS": "1"},
    )
    assert (module.threads, module.worker_connections) == (4, 4)


@pytest.mark.parametrize(
    ("variable", "value", "default"),
    [("GUNICORN_TIMEOUT", "0", 60), ("WEB_CONCURRENCY", "0", 2)],
)
def test_gunicorn_stops_on_a_bad_value_with_one_line_naming_it(
    variable: str, value: str, default: int
) -> None:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    environment = {**os.environ, variable: value, "PORT": "1"}

    started = subprocess.run(
        [gunicorn, "--config", str(GUNICORN_CONF), "initlab.web.wsgi:app"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode == 1
    assert started.stderr.strip() == (
        f"{variable} must be a positive integer; got {value!r}. Fix it or unset"
        f" {variable} to use the default {default}."
    )


def test_make_serve_names_a_bad_web_concurrency_before_gunicorn_reads_it() -> None:
    # Gunicorn itself would say only "Error: Value must be positive: -1". The
    # variables of an enclosing make (make test) are left out.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    }
    environment["WEB_CONCURRENCY"] = "-1"

    dry_run = subprocess.run(
        ["make", "--no-print-directory", "--dry-run", "serve"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert dry_run.returncode == 2
    assert "gunicorn" not in dry_run.stdout
    assert (
        "*** WEB_CONCURRENCY must be a positive integer; got '-1'. Fix it or unset"
        " WEB_CONCURRENCY to use the default 2.  Stop."
    ) in dry_run.stderr


def test_gunicorn_conf_names_are_gunicorn_settings_it_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Gunicorn silently skips names it does not know: a misspelt setting would
    # otherwise go unnoticed.
    module, _ = load_gunicorn_conf(monkeypatch, {"GUNICORN_WORKER_TMP_DIR": "/tmp"})
    config = GunicornConfig()

    for name, value in gunicorn_settings(module).items():
        assert name in config.settings, f"{name} is not a gunicorn setting"
        config.set(name, value)  # runs gunicorn's own validation

    assert config.address == [("127.0.0.1", 8000)]
    assert config.workers == 2
    assert config.worker_class_str == "gthread"
    assert config.threads == 6
    assert config.worker_connections == 6
    assert config.max_requests == 0
    assert config.preload_app is True
    assert config.accesslog is None
