"""torchvision ResNets as specs: counts, names and shapes against torchvision 0.28.

tests/fixtures/reference/import_torchvision.json holds what torchvision itself
builds (tools/make_torchvision_fixtures.py, on the meta device); the counts
below are also torchvision's documented ones. No torch is needed here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from initlab.core.errors import InvalidInput
from initlab.core.importers.torchvision import (
    TORCHVISION_ARCHS,
    TORCHVISION_OPTIONS,
    bottleneck_width,
    import_torchvision,
)
from initlab.core.recommend import recommend
from initlab.core.spec import SpecLimits, expand
from initlab.core.types import SchemeChoice
from initlab.web.schemas.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "reference" / "import_torchvision.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]

# sum(p.numel() for p in torchvision.models.<arch>().parameters())
COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
}


def expanded(arch: str, **options):
    imported = import_torchvision(arch, options)
    return expand(load_spec(imported.spec, SpecLimits()))


def shapes(arch: str, **options) -> dict[str, tuple[int, ...]]:
    return {p.name: p.shape for p in expanded(arch, **options).parameters}


def problems(arch, options) -> list:
    with pytest.raises(InvalidInput) as caught:
        import_torchvision(arch, options)
    return caught.value.problems


# --- Counts, names and shapes --------------------------------------------------


def test_the_catalogue_lists_exactly_the_ten_archs():
    assert sorted(TORCHVISION_ARCHS) == sorted(COUNTS)


@pytest.mark.parametrize("arch", COUNTS)
def test_parameter_count_is_torchvisions(arch):
    assert expanded(arch).parameter_count == COUNTS[arch]


def test_every_arch_has_a_fixture_case_with_the_documented_count():
    defaults = {case["arch"]: case for case in CASES if not case["options"]}
    assert {arch: case["parameter_count"] for arch, case in defaults.items()} == COUNTS


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['arch']}-{json.dumps(c['options'])}" for c in CASES]
)
def test_names_shapes_and_order_match_torchvision(case):
    result = expanded(case["arch"], **case["options"])
    ours = [[p.name, list(p.shape)] for p in result.parameters]

    assert result.parameter_count == case["parameter_count"]
    assert sorted(shape for _, shape in ours) == sorted(
        shape for _, shape in case["parameters"]
    )
    assert ours == case["parameters"]
    assert result.parameter_count == sum(math.prod(s) for _, s in case["parameters"])


def test_resnet50_is_the_example_spec():
    example = json.loads((ROOT / "examples" / "resnet50.spec.json").read_text())
    theirs = expand(load_spec(example, SpecLimits())).parameters
    ours = expanded("resnet50").parameters

    assert [(p.name, p.shape) for p in ours] == [(p.name, p.shape) for p in theirs]


def test_bottleneck_names_and_shapes():
    resnet50 = shapes("resnet50")

    assert resnet50["conv1.weight"] == (64, 3, 7, 7)
    assert resnet50["bn1.weight"] == (64,)
    assert resnet50["layer1.0.conv1.weight"] == (64, 64, 1, 1)
    assert resnet50["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert resnet50["layer1.0.downsample.1.bias"] == (256,)
    assert resnet50["layer2.0.conv2.weight"] == (128, 128, 3, 3)
    assert resnet50["layer3.5.conv2.weight"] == (256, 256, 3, 3)
    assert resnet50["layer3.5.bn3.weight"] == (1024,)
    assert resnet50["layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    assert resnet50["fc.weight"] == (1000, 2048)
    assert resnet50["fc.bias"] == (1000,)
    # Only the first block of a stage downsamples, and nothing is biased but fc.
    assert "layer3.1.downsample.0.weight" not in resnet50
    assert "layer3.6.conv1.weight" not in resnet50
    assert [n for n in resnet50 if n.endswith("bias") and "bn" not in n] == [
        "layer1.0.downsample.1.bias",
        "layer2.0.downsample.1.bias",
        "layer3.0.downsample.1.bias",
        "layer4.0.downsample.1.bias",
        "fc.bias",
    ]


def test_basic_block_names_and_shapes():
    resnet18 = shapes("resnet18")

    assert resnet18["layer1.1.conv2.weight"] == (64, 64, 3, 3)
    assert resnet18["layer2.0.conv1.weight"] == (128, 64, 3, 3)
    assert resnet18["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert resnet18["layer4.1.bn2.bias"] == (512,)
    assert resnet18["fc.weight"] == (1000, 512)
    # layer1 keeps the stem's 64 channels at stride 1: no downsample.
    assert "layer1.0.downsample.0.weight" not in resnet18
    assert "layer1.0.conv3.weight" not in resnet18


def test_grouped_and_wide_bottlenecks():
    resnext = shapes("resnext50_32x4d")
    wide = shapes("wide_resnet101_2")

    # width = int(64·4/64)·32 = 128 channels in 32 groups of 4.
    assert resnext["layer1.0.conv2.weight"] == (128, 4, 3, 3)
    # Stage 4: int(512·4/64)·32 = 1024 channels in 32 groups of 32.
    assert resnext["layer4.2.conv2.weight"] == (1024, 32, 3, 3)
    assert resnext["layer4.2.conv3.weight"] == (2048, 1024, 1, 1)
    assert shapes("resnext101_64x4d")["layer3.22.conv2.weight"] == (1024, 16, 3, 3)
    assert wide["layer1.0.conv1.weight"] == (128, 64, 1, 1)
    assert wide["layer3.22.conv2.weight"] == (512, 512, 3, 3)
    assert wide["layer3.22.conv3.weight"] == (1024, 512, 1, 1)


def test_bottleneck_width_truncates_as_torchvision():
    assert bottleneck_width(64, 64, 1) == 64
    assert bottleneck_width(512, 4, 32) == 1024
    assert bottleneck_width(64, 100, 1) == 100
    assert bottleneck_width(128, 7, 3) == 3 * 14  # int(128·7/64) = 14
    assert bottleneck_width(8, 4, 2) == 0


def test_residual_branches_are_the_blocks():
    assert expanded("resnet50").residual_branch_count == 16
    assert expanded("resnet152").residual_branch_count == 3 + 8 + 36 + 3
    blocks = expanded("resnet34").parameters
    conv2 = next(p for p in blocks if p.name == "layer3.4.conv2.weight")
    downsample = next(p for p in blocks if p.name == "layer2.0.downsample.0.weight")

    assert conv2.residual.is_branch_output
    assert conv2.residual.branch_depth == 2
    assert downsample.residual is None


# --- Dims and the imported spec ------------------------------------------------


def test_dims_name_the_stem_the_stages_and_the_classes():
    resnext = import_torchvision("resnext101_32x8d", {})
    resnet18 = import_torchvision("resnet18", {})

    assert resnext.spec["dims"] == {
        "image_channels": 3,
        "width": 64,
        "groups": 32,
        "stage1_width": 256,
        "stage1_out": 256,
        "stage2_width": 512,
        "stage2_out": 512,
        "stage3_width": 1024,
        "stage3_out": 1024,
        "stage4_width": 2048,
        "stage4_out": 2048,
        "n_classes": 1000,
    }
    assert resnet18.spec["dims"] == {
        "image_channels": 3,
        "width": 64,
        "stage2_width": 128,
        "stage3_width": 256,
        "stage4_width": 512,
        "n_classes": 1000,
    }
    assert resnext.source == "torchvision:resnext101_32x8d"
    # The widths to scale together: the stem and every stage's.
    assert resnext.scale_dims == {
        name: value
        for name, value in resnext.spec["dims"].items()
        if name == "width" or name.startswith("stage")
    }
    assert len(resnext.scale_dims) == 9
    assert resnext.derived_dims == ()


def test_the_spec_is_plain_json_data():
    spec = import_torchvision("wide_resnet50_2", {}).spec

    assert json.loads(json.dumps(spec)) == spec
    stem = spec["layers"][0]
    assert stem == {
        "kind": "conv2d",
        "name": "conv1",
        "in": "image_channels",
        "out": "width",
        "kernel_size": 7,
        "stride": 2,
        "padding": 3,
        "bias": False,
        "activation": "relu",
    }


def test_doubling_every_width_dim_doubles_every_conv_channel():
    imported = import_torchvision("resnet50", {})
    dims = imported.spec["dims"]
    wider = dict(imported.spec, dims={k: 2 * v for k, v in dims.items()})
    wider["dims"] |= {"image_channels": 3, "n_classes": 1000, "groups": 1}
    doubled = {p.name: p.shape for p in expand(load_spec(wider)).parameters}

    assert doubled["layer3.5.conv2.weight"] == (512, 512, 3, 3)
    assert doubled["layer1.0.downsample.0.weight"] == (512, 128, 1, 1)
    assert doubled["fc.weight"] == (1000, 4096)


def test_torchvisions_own_init_through_the_noted_scheme():
    """The note's scheme gives kaiming_normal_(mode='fan_out') on every conv."""
    result = recommend(
        expanded("resnet18"),
        SchemeChoice("kaiming_normal", {"mode": "fan_out"}),
        {"fc": SchemeChoice("torch_default")},
    )
    rows = {row.name: row for row in result.parameters}

    assert rows["conv1.weight"].std == pytest.approx(math.sqrt(2 / (64 * 49)), 1e-15)
    assert rows["layer3.0.conv2.weight"].std == pytest.approx(
        math.sqrt(2 / (256 * 9)), 1e-15
    )
    assert rows["fc.weight"].distribution == "uniform"
    assert rows["fc.weight"].std == pytest.approx(1 / math.sqrt(3 * 512), 1e-15)


# --- Options -----------------------------------------------------------------------


def test_num_classes_resizes_fc_only():
    ten = expanded("resnet50", num_classes=10)

    assert ten.parameter_count == COUNTS["resnet50"] - 990 * 2048 - 990
    assert {p.name: p.shape for p in ten.parameters}["fc.weight"] == (10, 2048)


def test_groups_and_width_per_group_replace_the_archs():
    grouped = shapes("resnet50", groups=4, width_per_group=32)
    resnext = import_torchvision("resnext50_32x4d", {"width_per_group": 8})

    # width = int(128·32/64)·4 = 256 in stage 2, groups of 64 channels.
    assert grouped["layer2.1.conv2.weight"] == (256, 64, 3, 3)
    assert resnext.spec["dims"]["stage1_width"] == 256
    assert any(
        "width_per_group=8 replaces resnext50_32x4d's own" in n for n in resnext.notes
    )
    assert not any("replaces" in n for n in import_torchvision("resnet50", {}).notes)


def test_zero_init_residual_changes_no_shape_and_is_noted():
    plain = import_torchvision("resnet18", {})
    zeroed = import_torchvision("resnet18", {"zero_init_residual": True})
    bottleneck = import_torchvision("resnet101", {"zero_init_residual": True})

    assert zeroed.spec == plain.spec
    assert any('"*.bn2.weight"' in note for note in zeroed.notes)
    assert any('"*.bn3.weight"' in note for note in bottleneck.notes)
    assert not any("zero_init_residual" in note for note in plain.notes)


def test_catalogue_entries_are_json_data():
    assert TORCHVISION_ARCHS["resnext101_64x4d"].as_dict() == {
        "description": TORCHVISION_ARCHS["resnext101_64x4d"].description,
        "block": "bottleneck",
        "layers": [3, 4, 23, 3],
        "groups": 64,
        "width_per_group": 4,
    }


def test_every_option_is_described():
    assert list(TORCHVISION_OPTIONS) == [
        "num_classes",
        "groups",
        "width_per_group",
        "zero_init_residual",
    ]


# --- Errors --------------------------------------------------------------------


def test_unknown_arch_lists_the_archs_and_suggests_one():
    (problem,) = problems("resnet5", {})

    assert problem.path == ("arch",)
    assert problem.value == "resnet5"
    assert 'did you mean "resnet50"?' in problem.message
    for arch in COUNTS:
        assert arch in problem.message


@pytest.mark.parametrize(
    ("arch", "suggestion"),
    [
        ("ResNet-50", "resnet50"),
        ("resnext50", "resnext50_32x4d"),
        ("wide_resnet50", "wide_resnet50_2"),
        ("resnext101_32x4d", "resnext101_32x8d"),
    ],
)
def test_near_miss_arch_names_are_suggested(arch, suggestion):
    (problem,) = problems(arch, {})

    assert f'did you mean "{suggestion}"?' in problem.message


@pytest.mark.parametrize("arch", [None, 50, ["resnet50"], "vgg16"])
def test_arch_that_is_not_a_known_name(arch):
    (problem,) = problems(arch, {})

    assert problem.path == ("arch",)
    assert "supported: resnet18, resnet34" in problem.message


def test_options_must_be_an_object():
    (problem,) = problems("resnet50", [("num_classes", 10)])

    assert problem.path == ("options",)
    assert '[["num_classes", 10]]' in problem.message


def test_unknown_option_lists_the_allowed_and_suggests_one():
    (problem,) = problems("resnet50", {"num_class": 10})

    assert problem.path == ("options", "num_class")
    assert 'did you mean "num_classes"?' in problem.message
    assert "num_classes, groups, width_per_group, zero_init_residual" in problem.message


def test_unrelated_unknown_option_is_to_be_removed():
    (problem,) = problems("resnet50", {"replace_stride_with_dilation": [1]})

    assert 'remove "replace_stride_with_dilation"' in problem.message


@pytest.mark.parametrize("name", ["num_classes", "groups", "width_per_group"])
@pytest.mark.parametrize(
    ("value", "written"),
    [
        (0, "0"),
        (-3, "-3"),
        (True, "true"),
        (2.5, "2.5"),
        ("10", '"10"'),
        (None, "null"),
    ],
)
def test_sizes_must_be_positive_integers(name, value, written):
    (problem,) = problems("resnext50_32x4d", {name: value})

    assert problem.path == ("options", name)
    assert problem.message.startswith(
        f"{name} must be a positive integer; got {written}"
    )


def test_a_size_beyond_any_dim_is_refused():
    (problem,) = problems("resnet50", {"num_classes": 2**31})

    assert problem.path == ("options", "num_classes")
    assert "2147483647" in problem.message


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_zero_init_residual_must_be_boolean(value):
    (problem,) = problems("resnet50", {"zero_init_residual": value})

    assert problem.path == ("options", "zero_init_residual")
    assert "must be true or false" in problem.message


@pytest.mark.parametrize(("name", "value"), [("groups", 2), ("width_per_group", 32)])
def test_basic_blocks_refuse_grouping_as_torchvision(name, value):
    (problem,) = problems("resnet34", {name: value})

    assert problem.path == ("options", name)
    assert "BasicBlock supports only groups 1 and width_per_group 64" in problem.message


def test_every_problem_is_reported_at_once():
    found = problems("resnet50", {"num_classes": 0, "groups": "2", "colour": 1})

    assert [p.path for p in found] == [
        ("options", "num_classes"),
        ("options", "groups"),
        ("options", "colour"),
    ]
