"""Reading architecture specs from files.

A spec is plain JSON data (``{"dims": {...}, "layers": [...]}``), so the
client posts whatever mapping it is given; this module only reads one from a
JSON file, or from a YAML file when PyYAML is installed (the ``yaml`` extra).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import SpecFileError

YAML_SUFFIXES = (".yaml", ".yml")


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the spec in ``path``: YAML for ``.yaml``/``.yml``, JSON otherwise.

    Raises :class:`~initlab_client.errors.SpecFileError` when the file does
    not parse or does not hold a JSON object, ``OSError`` when it cannot be
    read, and ``ImportError`` for a YAML file without PyYAML.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in YAML_SUFFIXES:
        spec = _parse_yaml(text, path)
    else:
        spec = _parse_json(text, path)

    if not isinstance(spec, dict):
        raise SpecFileError(
            f"{path}: a spec must be an object with 'dims' and 'layers',"
            f" got {type(spec).__name__}"
        )

    return spec


def _parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecFileError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno}:"
            f" {error.msg}"
        ) from error


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError as error:
        raise ImportError(
            f"{path} is YAML, which needs PyYAML: pip install 'initlab-client[yaml]'"
            " (or convert the spec to JSON)"
        ) from error

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecFileError(f"{path}: not valid YAML: {error}") from error
