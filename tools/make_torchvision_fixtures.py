"""Write tests/fixtures/reference/import_torchvision.json from torchvision itself.

For every ResNet that ``initlab.core.importers.torchvision`` rebuilds, and a
few option combinations, the script builds the torchvision model on PyTorch's
``meta`` device (shapes without storage) and records what the importer must
reproduce:

- ``parameter_count``: ``sum(p.numel() for p in model.parameters())``;
- ``parameters``: ``[name, shape]`` for every tensor of ``named_parameters()``,
  in its order (the test also compares the sorted shapes).

Each case's model comes from torchvision's own builder
(``torchvision.models.resnet50(num_classes=10)``). Where the builder refuses
an option because it fixes it (``resnext50_32x4d`` fixes ``groups`` and
``width_per_group``: ``_ovewrite_named_param`` raises), the case is built with
``ResNet(block, layers, **options)``, taking the block class and the blocks
per stage from the builder's default model, which is what the importer then
promises; ``call`` records which.

Needs torch 2.13.0 (CPU), torchvision 0.28.0 installed with ``--no-deps``
(its declared requirement is a CUDA build of torch) and pillow, which
``import torchvision`` needs. The service and its tests never import them.

Usage, from tools/:
``python make_torchvision_fixtures.py --out ../tests/fixtures/reference``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import types
from pathlib import Path
from typing import Any

import torch

# torchvision's PyPI wheel carries C++ detection ops (nms, roi_align) built
# against a CUDA torch; beside the CPU torch they cannot load, and registering
# their meta kernels at import fails. ResNets use none of them, so that one
# module is replaced by an empty one before torchvision is imported.
sys.modules.setdefault(
    "torchvision._meta_registrations",
    types.ModuleType("torchvision._meta_registrations"),
)

import torchvision  # noqa: E402
from torchvision.models import resnet  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "reference"
GENERATOR = "tools/make_torchvision_fixtures.py"
COMMAND = "make fixtures"

ARCHS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
)
#: (arch, options) beyond the defaults: the class count, groups and widths
#: the builder accepts, and ones it fixes (built with ``ResNet`` then).
OPTION_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("resnet18", {"num_classes": 10, "zero_init_residual": True}),
    ("resnet50", {"groups": 4, "width_per_group": 32}),
    ("wide_resnet50_2", {"groups": 2}),
    ("resnext50_32x4d", {"width_per_group": 8, "num_classes": 100}),
    ("resnext101_64x4d", {"groups": 16}),
)

NOTES = [
    "Expected parameter names, shapes (PyTorch layout, named_parameters()"
    " order) and counts of torchvision's ResNets, built on the meta device.",
    "Batch-norm running statistics are buffers and are not listed.",
    "call says how the model was built: the torchvision builder with the"
    " options, or ResNet(block, layers, **options) where the builder fixes an"
    " option (resnext*: groups and width_per_group; wide_resnet*:"
    " width_per_group).",
]


def build(arch: str, options: dict[str, Any]) -> tuple[torch.nn.Module, str]:
    """The model ``torchvision.models.<arch>(**options)``, or ResNet's where refused."""
    builder = getattr(resnet, arch)
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    with torch.device("meta"):
        try:
            return builder(**options), f"torchvision.models.{arch}({arguments})"
        except ValueError:
            default = builder()

    block = type(default.layer1[0])
    layers = [len(getattr(default, f"layer{i}")) for i in range(1, 5)]
    fixed = {"groups": default.groups, "width_per_group": default.base_width}
    kwargs = fixed | options
    with torch.device("meta"):
        model = resnet.ResNet(block, layers, **kwargs)
    written = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    return (
        model,
        f"torchvision.models.resnet.ResNet({block.__name__}, {layers}, {written})",
    )


def case(arch: str, options: dict[str, Any]) -> dict[str, Any]:
    model, call = build(arch, options)
    parameters = [[name, list(p.shape)] for name, p in model.named_parameters()]
    return {
        "arch": arch,
        "options": options,
        "call": call,
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "parameters": parameters,
    }


def dump(document: dict[str, Any]) -> str:
    """JSON with one line per parameter tensor, so the file stays readable."""
    lines = ["{"]
    head = {key: value for key, value in document.items() if key != "cases"}
    for key, value in sorted(head.items()):
        lines.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)},")
    lines.append(' "cases": [')
    for index, entry in enumerate(document["cases"]):
        lines.append("  {")
        for key in ("arch", "call", "options", "parameter_count"):
            value = json.dumps(entry[key], sort_keys=True)
            lines.append(f"   {json.dumps(key)}: {value},")
        lines.append('   "parameters": [')
        rows = [f"    {json.dumps(row)}" for row in entry["parameters"]]
        lines.append(",\n".join(rows))
        lines.append("   ]")
        lines.append("  }" + ("," if index < len(document["cases"]) - 1 else ""))
    lines += [" ]", "}"]

    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)

    document = {
        "generator": GENERATOR,
        "command": COMMAND,
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
        "notes": NOTES,
        "cases": [case(arch, {}) for arch in ARCHS]
        + [case(arch, options) for arch, options in OPTION_CASES],
    }
    text = dump(document)
    json.loads(text)  # the hand-written layout must still be JSON
    path = arguments.out / "import_torchvision.json"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(document['cases'])} cases)")


if __name__ == "__main__":
    main()
