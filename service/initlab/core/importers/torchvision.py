"""torchvision's ResNets as specs, built as ``torchvision.models.resnet`` builds them.

:func:`import_torchvision` turns an architecture name (``"resnet50"``) and the
keyword arguments torchvision's ``ResNet`` constructor takes into a spec whose
parameter tensors have the names, shapes and order of the torchvision model's
``named_parameters()`` (torchvision 0.28, ``torchvision/models/resnet.py``):

- the stem: ``conv1`` (7×7, stride 2, no bias) and ``bn1``; the ReLU and the
  max-pool hold no parameters;
- ``layer1`` … ``layer4``, each an ``nn.Sequential`` of residual blocks with
  ``planes`` = 64, 128, 256, 512: ``BasicBlock`` (expansion 1: two 3×3 convs)
  or ``Bottleneck`` (expansion 4: 1×1, grouped 3×3, 1×1, the stride on the
  3×3 conv as in "ResNet v1.5"), every conv followed by a batch norm;
- a ``downsample`` (1×1 conv + batch norm) on the first block of a stage whose
  stride is not 1 or whose channel count changes (``ResNet._make_layer``);
- the average pool (no parameters) and ``fc`` (a linear layer with bias).

:func:`build_resnet_spec` is the builder itself, shared with the ``resnet``
preset, which also changes the base width and the blocks per stage.

Batch-norm running statistics are buffers, not parameters, so they are not in
the spec; the counts match ``sum(p.numel() for p in model.parameters())``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from initlab.core.errors import FieldProblem, InvalidInput, Path, closest, json_value
from initlab.core.importers import ImportedSpec

BlockKind = Literal["basic", "bottleneck"]

#: Output channels of a block per ``planes``: ``BasicBlock.expansion`` and
#: ``Bottleneck.expansion``.
EXPANSION: dict[str, int] = {"basic": 1, "bottleneck": 4}
#: The stride of each stage's first block (``ResNet.__init__``: layer1 keeps
#: the resolution, layer2-4 halve it).
STAGE_STRIDES: tuple[int, ...] = (1, 2, 2, 2)
#: Torchvision's stem width (``ResNet.inplanes = 64``); stage i has
#: ``planes`` = width·2^(i-1).
TORCHVISION_WIDTH = 64
#: Channels of the input image (``conv1`` takes RGB).
IMAGE_CHANNELS = 3


@dataclass(frozen=True)
class TorchvisionArch:
    """One torchvision ResNet builder: its block, blocks per stage and grouping."""

    description: str
    block: BlockKind
    layers: tuple[int, int, int, int]
    groups: int = 1
    width_per_group: int = 64

    def as_dict(self) -> dict[str, Any]:
        """The catalogue entry, as JSON data."""
        return {
            "description": self.description,
            "block": self.block,
            "layers": list(self.layers),
            "groups": self.groups,
            "width_per_group": self.width_per_group,
        }


TORCHVISION_ARCHS: dict[str, TorchvisionArch] = {
    "resnet18": TorchvisionArch(
        "ResNet-18 (He et al. 2016): BasicBlock, 2-2-2-2 blocks", "basic", (2, 2, 2, 2)
    ),
    "resnet34": TorchvisionArch(
        "ResNet-34 (He et al. 2016): BasicBlock, 3-4-6-3 blocks", "basic", (3, 4, 6, 3)
    ),
    "resnet50": TorchvisionArch(
        "ResNet-50 v1.5 (He et al. 2016): Bottleneck, 3-4-6-3 blocks",
        "bottleneck",
        (3, 4, 6, 3),
    ),
    "resnet101": TorchvisionArch(
        "ResNet-101 v1.5 (He et al. 2016): Bottleneck, 3-4-23-3 blocks",
        "bottleneck",
        (3, 4, 23, 3),
    ),
    "resnet152": TorchvisionArch(
        "ResNet-152 v1.5 (He et al. 2016): Bottleneck, 3-8-36-3 blocks",
        "bottleneck",
        (3, 8, 36, 3),
    ),
    "wide_resnet50_2": TorchvisionArch(
        "Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): ResNet-50 with"
        " bottlenecks twice as wide (width_per_group 128)",
        "bottleneck",
        (3, 4, 6, 3),
        width_per_group=128,
    ),
    "wide_resnet101_2": TorchvisionArch(
        "Wide ResNet-101-2 (Zagoruyko & Komodakis 2016): ResNet-101 with"
        " bottlenecks twice as wide (width_per_group 128)",
        "bottleneck",
        (3, 4, 23, 3),
        width_per_group=128,
    ),
    "resnext50_32x4d": TorchvisionArch(
        "ResNeXt-50 32x4d (Xie et al. 2017): ResNet-50 with 32 groups of width 4",
        "bottleneck",
        (3, 4, 6, 3),
        groups=32,
        width_per_group=4,
    ),
    "resnext101_32x8d": TorchvisionArch(
        "ResNeXt-101 32x8d (Xie et al. 2017): ResNet-101 with 32 groups of width 8",
        "bottleneck",
        (3, 4, 23, 3),
        groups=32,
        width_per_group=8,
    ),
    "resnext101_64x4d": TorchvisionArch(
        "ResNeXt-101 64x4d (Xie et al. 2017): ResNet-101 with 64 groups of width 4",
        "bottleneck",
        (3, 4, 23, 3),
        groups=64,
        width_per_group=4,
    ),
}

#: The options :func:`import_torchvision` takes: torchvision ``ResNet``
#: keyword arguments, with what each does.
TORCHVISION_OPTIONS: dict[str, str] = {
    "num_classes": "outputs of fc (integer ≥ 1, default 1000)",
    "groups": "groups of every bottleneck's 3×3 conv (integer ≥ 1, default the"
    " arch's: 32 or 64 for ResNeXt, else 1)",
    "width_per_group": "width of one group of a bottleneck's 3×3 conv at planes"
    " 64 (integer ≥ 1, default the arch's: 128 for wide ResNets, 4 or 8 for"
    " ResNeXt, else 64)",
    "zero_init_residual": "true to start each block's last batch norm at weight"
    " 0 (a boolean, default false; changes no shape)",
}

#: The most blocks one stage may have: far beyond any published ResNet (the
#: 1001-layer CIFAR ResNet has 111 per stage), and small enough that the
#: block-by-block spec stays a few megabytes.
MAX_BLOCKS_PER_STAGE = 1000


@dataclass(frozen=True)
class ResNetShape:
    """What fixes a ResNet's parameter shapes: torchvision's ``ResNet`` arguments.

    ``width`` is the stem's channel count (torchvision's ``inplanes``, fixed at
    64 there); stage i has ``planes`` = width·2^(i-1).
    """

    block: BlockKind
    layers: tuple[int, ...]
    width: int = TORCHVISION_WIDTH
    groups: int = 1
    width_per_group: int = 64
    num_classes: int = 1000


def bottleneck_width(planes: int, width_per_group: int, groups: int) -> int:
    """The channels of a bottleneck's 3×3 conv: int(planes·width_per_group/64)·groups.

    torchvision's ``Bottleneck.__init__`` (``width = int(planes * (base_width /
    64.0)) * groups``); the integer division is the same truncation, exactly.
    """
    return planes * width_per_group // 64 * groups


def stage_planes(width: int, stage: int) -> int:
    """``planes`` of stage ``stage`` (0-based): width, 2·width, 4·width, 8·width."""
    return width * 2**stage


def resnet_shape_problems(
    shape: ResNetShape, paths: Mapping[str, Path]
) -> list[FieldProblem]:
    """What torchvision would refuse (or build with an empty conv) for ``shape``.

    ``paths`` maps ``groups`` and ``width_per_group`` to where the caller took
    them from. ``BasicBlock`` raises for groups ≠ 1 or width_per_group ≠ 64; a
    bottleneck width that truncates to 0 would give a conv with no channels.
    """
    problems = []
    if shape.block == "basic":
        for name, default in (("groups", 1), ("width_per_group", 64)):
            value = getattr(shape, name)
            if value != default:
                problems.append(
                    FieldProblem(
                        paths[name],
                        f"{name} = {json_value(value)} needs Bottleneck blocks:"
                        " torchvision's BasicBlock supports only groups 1 and"
                        f" width_per_group 64; set {name} to {default} or use"
                        " Bottleneck blocks (resnet50 and deeper; the resnet"
                        " preset's bottleneck: true)",
                        value=value,
                        allowed=str(default),
                    )
                )
        return problems

    narrowest = bottleneck_width(shape.width, shape.width_per_group, 1)
    if narrowest == 0:
        problems.append(
            FieldProblem(
                paths["width_per_group"],
                f"width_per_group = {shape.width_per_group} with width ="
                f" {shape.width} gives stage 1 bottlenecks"
                f" int({shape.width}·{shape.width_per_group}/64)·groups = 0"
                " channels; width·width_per_group must be at least 64",
                value=shape.width_per_group,
                allowed=f"an integer ≥ {-(-64 // shape.width)}",
            )
        )

    return problems


def resnet_width_dims(shape: ResNetShape) -> dict[str, int]:
    """The dims that widen a ResNet, with their values: ``width`` and every
    stage's widths (scale them together, by one factor, to widen the net)."""
    dims = build_resnet_spec(shape)["dims"]
    return {
        name: value
        for name, value in dims.items()
        if name == "width" or name.startswith("stage")
    }


def build_resnet_spec(shape: ResNetShape) -> dict[str, Any]:
    """The spec of ``ResNet(block, layers, ...)``: torchvision.models.resnet.ResNet.

    Dims: ``image_channels``, ``width`` (the stem), ``groups`` (bottleneck nets),
    per stage ``stage<i>_width`` (the 3×3 convs' channels) and, for
    bottlenecks, ``stage<i>_out`` (planes·4), and ``n_classes``. Stage 1 of a
    BasicBlock net runs at the stem width, so it uses ``width`` itself.
    Each conv carries ``"activation": "relu"``: the nonlinearity its output
    reaches next (through its batch norm, and for a block's last conv and the
    downsample through the residual addition), the one torchvision's
    ``kaiming_normal_(..., nonlinearity="relu")`` assumes.
    """
    bottleneck = shape.block == "bottleneck"
    dims: dict[str, int] = {"image_channels": IMAGE_CHANNELS, "width": shape.width}
    if bottleneck:
        dims["groups"] = shape.groups

    stages = []
    in_dim = "width"
    for stage, (blocks, stride) in enumerate(
        zip(shape.layers, STAGE_STRIDES, strict=True)
    ):
        planes = stage_planes(shape.width, stage)
        if bottleneck:
            mid_dim, out_dim = f"stage{stage + 1}_width", f"stage{stage + 1}_out"
            dims[mid_dim] = bottleneck_width(
                planes, shape.width_per_group, shape.groups
            )
            dims[out_dim] = planes * EXPANSION["bottleneck"]
        else:
            mid_dim = out_dim = "width" if stage == 0 else f"stage{stage + 1}_width"
            dims[mid_dim] = planes
        stages.append(
            _stage(shape.block, stage, blocks, stride, in_dim, mid_dim, out_dim)
        )
        in_dim = out_dim
    dims["n_classes"] = shape.num_classes

    stem = [
        _conv("conv1", "image_channels", "width", 7, stride=2, padding=3),
        _batch_norm("bn1", "width"),
    ]
    fc = {"kind": "linear", "name": "fc", "in": in_dim, "out": "n_classes"}
    return {"dims": dims, "layers": [*stem, *stages, fc]}


def import_torchvision(arch: str, options: Mapping[str, Any]) -> ImportedSpec:
    """The spec of ``torchvision.models.<arch>(**options)`` (torchvision 0.28).

    ``options`` may give ``num_classes``, ``groups``, ``width_per_group`` and
    ``zero_init_residual``, as torchvision's ``ResNet`` constructor takes them;
    ``groups`` and ``width_per_group`` replace the arch's. Raises
    :class:`InvalidInput` with paths ``("arch",)`` and ``("options", name)``.
    """
    if not isinstance(arch, str) or arch not in TORCHVISION_ARCHS:
        raise InvalidInput.at(
            ("arch",),
            _unknown_arch_message(arch),
            value=arch,
            allowed=", ".join(TORCHVISION_ARCHS),
        )
    entry = TORCHVISION_ARCHS[arch]
    if not isinstance(options, Mapping):
        raise InvalidInput.at(
            ("options",),
            f"options must be an object of ResNet keyword arguments; got"
            f' {json_value(options)}; write e.g. {{"num_classes": 10}} or {{}}',
            value=options,
            allowed="an object with " + ", ".join(TORCHVISION_OPTIONS),
        )

    problems = _option_problems(options)
    if problems:
        raise InvalidInput(problems)
    shape = ResNetShape(
        entry.block,
        entry.layers,
        groups=options.get("groups", entry.groups),
        width_per_group=options.get("width_per_group", entry.width_per_group),
        num_classes=options.get("num_classes", 1000),
    )
    paths = {name: ("options", name) for name in ("groups", "width_per_group")}
    problems = resnet_shape_problems(shape, paths)
    if problems:
        raise InvalidInput(problems)

    notes = [
        f"Built as torchvision.models.{arch}() of torchvision 0.28: parameter names,"
        " shapes and order are those of named_parameters(); batch-norm running"
        " statistics are buffers and are not counted.",
        *_override_notes(arch, entry, shape),
        *resnet_notes(shape),
    ]
    if options.get("zero_init_residual", False):
        last_bn = "bn3" if entry.block == "bottleneck" else "bn2"
        notes.append(
            f"zero_init_residual: torchvision starts every block's {last_bn}.weight"
            " at 0; this changes no shape. To get it from /v1/recommendations add"
            f' the override {{"*.{last_bn}.weight": {{"name": "constant", "value":'
            " 0}}."
        )

    return ImportedSpec(
        spec=build_resnet_spec(shape),
        source=f"torchvision:{arch}",
        scale_dims=resnet_width_dims(shape),
        notes=tuple(notes),
    )


def resnet_notes(shape: ResNetShape) -> list[str]:
    """What a user of a ResNet spec should know: init, widening, depth, omissions."""
    if shape.block == "bottleneck":
        stage_dims = "every stage<i>_width and stage<i>_out"
    else:
        stage_dims = "stage2_width, stage3_width and stage4_width"
    return [
        "torchvision initializes every conv with kaiming_normal_(mode='fan_out',"
        " nonlinearity='relu'), batch norms at weight 1 and bias 0, and fc as"
        " nn.Linear does: the scheme"
        ' {"name": "kaiming_normal", "mode": "fan_out"} with the override'
        ' {"fc": "torch_default"} gives the same.',
        f"To widen the network k-fold, multiply width and {stage_dims} by k"
        " (torchvision's planes are 64, 128, 256 and 512 for a width of 64).",
        "The blocks are written one by one so that layerN.0 carries the"
        " downsample and names match torchvision's; a repeat group names its"
        " copies from 0, so the blocks per stage"
        f" ({'-'.join(str(n) for n in shape.layers)}) are not dims: change the"
        " depth with the resnet preset's blocks.",
        "stride and padding are recorded as torchvision sets them and change no"
        " parameter shape; the max-pool and the average pool hold no parameters"
        " and are left out.",
    ]


def _option_problems(options: Mapping[str, Any]) -> list[FieldProblem]:
    problems = []
    for name, value in options.items():
        path = ("options", name)
        if name not in TORCHVISION_OPTIONS:
            message = (
                f"unknown option {json_value(name)}; allowed:"
                f" {', '.join(TORCHVISION_OPTIONS)}"
            )
            suggestion = closest(name, TORCHVISION_OPTIONS)
            if suggestion:
                message += f"; did you mean {json_value(suggestion)}?"
            else:
                message += f"; remove {json_value(name)}"
            problems.append(
                FieldProblem(path, message, name, ", ".join(TORCHVISION_OPTIONS))
            )
        elif name == "zero_init_residual":
            if not isinstance(value, bool):
                problems.append(
                    FieldProblem(
                        path,
                        "zero_init_residual must be true or false; got"
                        f" {json_value(value)}",
                        value,
                        "true or false",
                    )
                )
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(
                FieldProblem(
                    path,
                    f"{name} must be a positive integer; got {json_value(value)};"
                    f" {name} is the {TORCHVISION_OPTIONS[name]}",
                    value,
                    "an integer ≥ 1",
                )
            )
        elif value > 2**31 - 1:
            problems.append(
                FieldProblem(
                    path,
                    f"{name} = {json_value(value)} is larger than any size a spec"
                    " may hold (2147483647); give a smaller value",
                    value,
                    "an integer from 1 to 2147483647",
                )
            )

    return problems


def _override_notes(arch: str, entry: TorchvisionArch, shape: ResNetShape) -> list[str]:
    """Say so when ``groups``/``width_per_group`` replace what the builder fixes.

    torchvision's ``resnext*`` builders fix both and ``wide_resnet*`` builders
    fix ``width_per_group`` (``_ovewrite_named_param`` raises for another
    value), so the spec is then ``ResNet(...)``'s, not the builder's.
    """
    fixed = {
        "groups": entry.groups != 1,
        "width_per_group": entry.width_per_group != 64,
    }
    changed = [
        f"{name}={getattr(shape, name)}"
        for name in ("groups", "width_per_group")
        if fixed[name] and getattr(shape, name) != getattr(entry, name)
    ]
    if not changed:
        return []
    return [
        f"{', '.join(changed)} replaces {arch}'s own: built as ResNet(Bottleneck,"
        f" {list(entry.layers)}, groups={shape.groups},"
        f" width_per_group={shape.width_per_group}) (torchvision's {arch}() itself"
        " refuses another value)."
    ]


def _unknown_arch_message(arch: object) -> str:
    message = (
        f"unknown torchvision architecture {json_value(arch)}; supported:"
        f" {', '.join(TORCHVISION_ARCHS)}"
    )
    if isinstance(arch, str):
        written = arch.lower().replace("-", "_")
        # "resnext50" means resnext50_32x4d rather than the closer resnet50.
        longer = [name for name in TORCHVISION_ARCHS if name.startswith(written)]
        suggestion = longer[0] if len(longer) == 1 else None
        suggestion = suggestion or closest(written, TORCHVISION_ARCHS)
        if suggestion:
            return f"{message}; did you mean {json_value(suggestion)}?"

    return message


def _stage(
    block: BlockKind,
    stage: int,
    blocks: int,
    stride: int,
    in_dim: str,
    mid_dim: str,
    out_dim: str,
) -> dict[str, Any]:
    """``layer<stage+1>``: ``ResNet._make_layer``, its first block downsampling.

    The first block takes the previous stage's channels and the stage's
    stride; it gets a downsample when the stride is not 1 or the channels
    change (in_dim ≠ out_dim: the dims are named apart exactly when torchvision
    compares ``inplanes != planes * expansion`` true).
    """
    downsample = stride != 1 or in_dim != out_dim
    first = _block(block, "0", in_dim, mid_dim, out_dim, stride, downsample)
    rest = [
        _block(block, str(index), out_dim, mid_dim, out_dim, 1, False)
        for index in range(1, blocks)
    ]
    return {"kind": "sequential", "name": f"layer{stage + 1}", "layers": [first, *rest]}


def _block(
    block: BlockKind,
    name: str,
    in_dim: str,
    mid_dim: str,
    out_dim: str,
    stride: int,
    downsample: bool,
) -> dict[str, Any]:
    """One ``BasicBlock`` or ``Bottleneck`` (torchvision.models.resnet) as a residual.

    BasicBlock: conv3x3(in, planes, stride), conv3x3(planes, planes). Bottleneck
    (v1.5): conv1x1(in, width), conv3x3(width, width, stride, groups),
    conv1x1(width, planes·4). Each conv is followed by its batch norm.
    """
    if block == "basic":
        layers = [
            _conv("conv1", in_dim, mid_dim, 3, stride=stride, padding=1),
            _batch_norm("bn1", mid_dim),
            _conv("conv2", mid_dim, out_dim, 3, stride=1, padding=1),
            _batch_norm("bn2", out_dim),
        ]
    else:
        layers = [
            _conv("conv1", in_dim, mid_dim, 1),
            _batch_norm("bn1", mid_dim),
            _conv("conv2", mid_dim, mid_dim, 3, stride=stride, padding=1),
            _batch_norm("bn2", mid_dim),
            _conv("conv3", mid_dim, out_dim, 1),
            _batch_norm("bn3", out_dim),
        ]
        layers[2]["groups"] = "groups"

    group: dict[str, Any] = {
        "kind": "residual",
        "name": name,
        "norm": "none",
        "layers": layers,
    }
    if downsample:
        conv = _conv(None, in_dim, out_dim, 1, stride=stride)
        group["shortcut"] = [
            {
                "kind": "sequential",
                "name": "downsample",
                "layers": [conv, _batch_norm(None, out_dim)],
            }
        ]
    return group


def _conv(
    name: str | None,
    in_dim: str,
    out_dim: str,
    kernel_size: int,
    stride: int | None = None,
    padding: int | None = None,
) -> dict[str, Any]:
    """An ``nn.Conv2d`` without bias, as torchvision's conv1x1/conv3x3 make them."""
    conv: dict[str, Any] = {"kind": "conv2d"}
    if name is not None:
        conv["name"] = name
    conv |= {"in": in_dim, "out": out_dim, "kernel_size": kernel_size}
    if stride is not None:
        conv["stride"] = stride
    if padding is not None:
        conv["padding"] = padding

    return conv | {"bias": False, "activation": "relu"}


def _batch_norm(name: str | None, dim: str) -> dict[str, Any]:
    norm: dict[str, Any] = {"kind": "batch_norm"}
    if name is not None:
        norm["name"] = name

    return norm | {"in": dim}
