"""The client package stands alone: requests is all it needs."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import initlab_client

CLIENT_DIR = Path(initlab_client.__file__).resolve().parent
PYPROJECT = CLIENT_DIR.parent / "pyproject.toml"
SERVICE_PACKAGES = {"flask", "werkzeug", "marshmallow", "numpy", "initlab", "yaml"}


def top_level_entries(distribution: str) -> set[str]:
    """Files and folders a distribution puts directly in site-packages."""
    entries = set()
    for file in importlib.metadata.distribution(distribution).files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".pth")) or first in ("..", "__pycache__"):
            continue
        entries.add(first)

    return entries


def requirement_names(distribution: str) -> list[str]:
    """Distributions ``distribution`` requires, leaving out its extras."""
    required = importlib.metadata.requires(distribution) or []
    return [
        re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        for requirement in required
        if "extra ==" not in requirement
    ]


def test_declared_dependencies_are_requests_and_optional_extras() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]

    assert project["dependencies"] == ["requests>=2.28", "urllib3>=1.26"]
    assert project["optional-dependencies"] == {
        "yaml": ["PyYAML>=6.0"],
        "cli": ["click>=8.1", "rich>=13"],
        "torch": ["torch>=2.1"],
        "all": ["initlab-client[yaml,cli,torch]"],
    }
    assert project["scripts"] == {"initlab": "initlab_client.cli:main"}
    assert project["version"] == initlab_client.__version__


def third_party_imports(source: Path) -> set[str]:
    """Top-level names of what ``source`` imports from outside the standard library."""
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])

    return imported - sys.stdlib_module_names - {"__future__", "initlab_client"}


# What each module of the client may import beyond the standard library: the
# core needs requests (and its urllib3) only; an extra's module, its extra.
EXTRA_MODULES = {
    "cli": {"click", "rich"},
    "pytorch.py": {"torch"},
    # yaml is imported inside load_spec only, for YAML files (the yaml extra).
    "spec.py": {"yaml"},
}


def test_sources_import_only_the_standard_library_and_requests() -> None:
    sources = sorted(CLIENT_DIR.rglob("*.py"))
    modules = {source.relative_to(CLIENT_DIR).parts[0] for source in sources}
    assert modules >= {"client.py", "cli", "pytorch.py"}

    for source in sources:
        module = source.relative_to(CLIENT_DIR).parts[0]
        allowed = {"requests", "urllib3"} | EXTRA_MODULES.get(module, set())
        assert third_party_imports(source) <= allowed, source


def test_imports_with_only_requests_installed(tmp_path: Path) -> None:
    # A site made of links to the client and to requests with what it
    # requires; the interpreter runs with -S so no other site-packages exist.
    site = tmp_path / "site"
    site.mkdir()
    (site / "initlab_client").symlink_to(CLIENT_DIR)
    distributions = ["requests", *requirement_names("requests")]
    installed = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    for distribution in distributions:
        for entry in top_level_entries(distribution):
            (site / entry).symlink_to(installed / entry)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        " import initlab_client;"
        " client = initlab_client.Client('http://127.0.0.1:9');"
        " print(sorted({m.split('.')[0] for m in sys.modules}))"
    )

    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(site)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout))
    assert {"initlab_client", "requests"} <= loaded
    assert not loaded & SERVICE_PACKAGES
