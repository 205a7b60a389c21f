"""Reading specs from JSON and YAML files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from initlab_client import SpecFileError, load_spec

SPEC = {
    "dims": {"d_model": 64},
    "layers": [
        {"kind": "linear", "name": "up", "in": "d_model", "out": 256},
        {"kind": "linear", "name": "down", "in": 256, "out": "d_model"},
    ],
}
SPEC_YAML = """\
dims:
  d_model: 64
layers:
  - {kind: linear, name: up, in: d_model, out: 256}
  - kind: linear
    name: down
    in: 256
    out: d_model
"""


def test_a_json_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mlp.spec.json"
    path.write_text('{"dims": {"d_model": 64}, "layers": []}')

    assert load_spec(path) == {"dims": {"d_model": 64}, "layers": []}
    assert load_spec(str(path)) == {"dims": {"d_model": 64}, "layers": []}


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_a_yaml_file_is_read(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"mlp{suffix}"
    path.write_text(SPEC_YAML)

    assert load_spec(path) == SPEC


def test_bad_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"dims": {},\n "layers": [,]}')

    with pytest.raises(SpecFileError, match=r"broken\.json: not valid JSON at line 2"):
        load_spec(path)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("dims: {d_model: 64\nlayers: []\n")

    with pytest.raises(SpecFileError, match=r"broken\.yaml: not valid YAML"):
        load_spec(path)


def test_a_file_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "layers.json"
    path.write_text('[{"kind": "linear", "in": 4, "out": 2}]')

    with pytest.raises(SpecFileError, match="must be an object.*got list"):
        load_spec(path)


def test_yaml_without_pyyaml_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mlp.yaml"
    path.write_text(SPEC_YAML)
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now fails

    with pytest.raises(ImportError) as caught:
        load_spec(path)

    message = str(caught.value)
    assert message.startswith(f"{path} is YAML, which needs PyYAML: pip install")
    # initlab-client is not on PyPI: the extra comes from the repository.
    assert "pip install '<path to initlab>/client[yaml]'" in message
    assert "initlab-client[yaml]" not in message


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "nowhere.json")
