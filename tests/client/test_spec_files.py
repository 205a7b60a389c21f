"""Reading specs from JSON and YAML files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from initlab_client import Spec, SpecFileError, load_spec

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


# Nine levels of nine aliases: 370 bytes that, expanded, are 9⁹ (387 million)
# strings ("billion laughs").
BILLION_LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{alias}'] * 9)}]\n"
    for alias, name in zip("abcdefgh", "bcdefghi", strict=True)
)
ALIASES_REFUSED = "are not read in a spec file; write the value out"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BILLION_LAUGHS, f"line 2, column 8: YAML aliases (*a) {ALIASES_REFUSED}"),
        ("a: &a [*a]\n", f"line 1, column 8: YAML aliases (*a) {ALIASES_REFUSED}"),
        (
            "base: &fc {kind: linear, in: 4}\nlayers:\n- <<: *fc\n  out: 2\n",
            f"line 3, column 7: YAML aliases (*fc) {ALIASES_REFUSED}",
        ),
        (
            "? [a, b]\n: 1\n",
            "line 1, column 3: this mapping key is a list; the keys of a spec are"
            " names (JSON keys are strings): write a name",
        ),
        ("dims:\n  ? {d: 1}\n  : 4\n", "line 2, column 5: this mapping key is a"),
    ],
    ids=["billion-laughs", "recursive", "merge-key", "list-key", "mapping-key"],
)
def test_yaml_aliases_and_keys_that_are_no_names_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)

    for load in (load_spec, Spec.load):
        with pytest.raises(SpecFileError) as caught:
            load(path)
        assert str(caught.value).startswith(f"{path}: {message}")


def test_an_anchor_without_an_alias_is_read(tmp_path: Path) -> None:
    # An anchor alone is harmless: nothing refers to it.
    path = tmp_path / "anchored.yaml"
    path.write_text("dims: &dims {d_model: 64}\nlayers: []\n")

    assert load_spec(path) == {"dims": {"d_model": 64}, "layers": []}
