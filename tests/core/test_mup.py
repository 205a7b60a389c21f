"""initlab.core.mup: µP tables against values worked out by hand.

Each expected number is derived in the test, from Tensor Programs V (Yang et
al. 2022, Tables 3 and 8), Tensor Programs VI (depth-µP, arXiv 2310.02244) and
CompleteP (Dey et al. 2025, arXiv 2505.01618, Table 1), with η the base
learning rate, λ its weight decay, σ its init std and m = target/base the
multiplier of a width. What the mup package itself gives is checked in
tests/test_mup_reference.py.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initlab.core.errors import FieldProblem, InvalidInput, LimitExceeded
from initlab.core.mup import (
    DepthRule,
    MupLimits,
    MupRow,
    MupSettings,
    MupTable,
    MupTarget,
    mup_table,
)
from initlab.core.spec import (
    AttentionSpec,
    ConvSpec,
    EmbeddingSpec,
    LinearSpec,
    NormLayerSpec,
    NormSpec,
    RepeatGroup,
    ResidualGroup,
    SequentialGroup,
    Spec,
    expand,
)
from initlab.core.types import Activation, SchemeChoice

RELU = Activation("relu")
GELU = Activation("gelu")
RELATIVE_TOLERANCE = 1e-12
ETA = 1e-3
LAMBDA = 0.1
SIGMA = 0.02
EPS = 1e-8


# --- Specs -------------------------------------------------------------------------


def mlp_3072() -> Spec:
    """MLP 3072 → w → w → 10 (tests/fixtures/mup/mlp-3072.spec.json)."""
    return Spec(
        dims={"d_in": 3072, "w": 256, "n_out": 10},
        layers=(
            LinearSpec(
                name="fc1", in_features="d_in", out_features="w", activation=RELU
            ),
            LinearSpec(name="fc2", in_features="w", out_features="w", activation=RELU),
            LinearSpec(name="readout", in_features="w", out_features="n_out"),
        ),
    )


def two_width_mlp() -> Spec:
    """32 → d_model → d_ff → d_model → 10: two widths that may scale apart."""
    return Spec(
        dims={"d_model": 64, "d_ff": 128},
        layers=(
            LinearSpec(name="fc1", in_features=32, out_features="d_model"),
            LinearSpec(name="fc2", in_features="d_model", out_features="d_ff"),
            LinearSpec(name="fc3", in_features="d_ff", out_features="d_model"),
            LinearSpec(name="readout", in_features="d_model", out_features=10),
        ),
    )


def gpt(layout: str = "out_in") -> Spec:
    """The small GPT of tests/fixtures/mup/gpt.spec.json (``in_out``: gpt-conv1d).

    d_model 64, d_ff 256, 2 blocks of 4 heads (d_head 16), vocabulary 1000,
    128 positions, an untied lm_head without bias.
    """
    attention = ResidualGroup(
        norm="pre",
        norm_layer=NormLayerSpec(kind="layer_norm", name="ln_1"),
        layers=(
            AttentionSpec(
                name="attn", d_model="d_model", n_heads="n_head", layout=layout
            ),
        ),
    )
    mlp = ResidualGroup(
        norm="pre",
        norm_layer=NormLayerSpec(kind="layer_norm", name="ln_2"),
        layers=(
            SequentialGroup(
                name="mlp",
                layers=(
                    LinearSpec(
                        name="c_fc",
                        in_features="d_model",
                        out_features="d_ff",
                        activation=GELU,
                        layout=layout,
                    ),
                    LinearSpec(
                        name="c_proj",
                        in_features="d_ff",
                        out_features="d_model",
                        layout=layout,
                    ),
                ),
            ),
        ),
    )
    return Spec(
        dims={
            "vocab": 1000,
            "n_positions": 128,
            "d_model": 64,
            "d_ff": 256,
            "n_layer": 2,
            "n_head": 4,
        },
        layers=(
            EmbeddingSpec(name="wte", in_features="vocab", out_features="d_model"),
            EmbeddingSpec(
                name="wpe", in_features="n_positions", out_features="d_model"
            ),
            RepeatGroup(name="h", count="n_layer", layers=(attention, mlp)),
            NormSpec(kind="layer_norm", name="ln_f", in_features="d_model"),
            LinearSpec(
                name="lm_head", in_features="d_model", out_features="vocab", bias=False
            ),
        ),
    )


def tied_lm() -> Spec:
    """Embedding, one hidden layer, a norm and a head tied to the embedding."""
    return Spec(
        dims={"vocab": 100, "d": 64},
        layers=(
            EmbeddingSpec(name="wte", in_features="vocab", out_features="d"),
            LinearSpec(name="fc", in_features="d", out_features="d", activation=RELU),
            NormSpec(kind="layer_norm", name="ln", in_features="d"),
            LinearSpec(
                name="lm_head",
                in_features="d",
                out_features="vocab",
                bias=False,
                tied_to="wte",
            ),
        ),
    )


def conv_net() -> Spec:
    """A conv stem, a conv body whose kernel size is a dim, and a linear head."""
    return Spec(
        dims={"c": 16, "k": 3},
        layers=(
            ConvSpec(
                kind="conv2d",
                name="stem",
                in_features=3,
                out_features="c",
                kernel_size=3,
                activation=RELU,
            ),
            ConvSpec(
                kind="conv2d",
                name="body",
                in_features="c",
                out_features="c",
                kernel_size="k",
                activation=RELU,
            ),
            LinearSpec(name="head", in_features="c", out_features=10),
        ),
    )


def plain_deep_mlp() -> Spec:
    """A repeat of linear layers without any residual group."""
    return Spec(
        dims={"d": 16, "n": 2},
        layers=(
            LinearSpec(name="fc0", in_features=8, out_features="d", activation=RELU),
            RepeatGroup(
                name="h",
                count="n",
                layers=(
                    LinearSpec(
                        name="fc", in_features="d", out_features="d", activation=RELU
                    ),
                ),
            ),
            LinearSpec(name="head", in_features="d", out_features=4),
        ),
    )


# --- Helpers -----------------------------------------------------------------------


def adamw(**fields) -> MupSettings:
    return MupSettings(optimizer="adamw", lr=ETA, weight_decay=LAMBDA, **fields)


def sgd(**fields) -> MupSettings:
    return MupSettings(optimizer="sgd", lr=ETA, weight_decay=LAMBDA, **fields)


def rows_of(target: MupTarget) -> dict[str, MupRow]:
    rows = {row.name: row for row in target.parameters}
    assert len(rows) == len(target.parameters), "a parameter name repeats"
    return rows


def close(ours: float, expected: float) -> bool:
    if expected == 0.0:
        return ours == 0.0
    return math.isclose(ours, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)


def assert_row(row: MupRow, **expected: float) -> None:
    for field_name, value in expected.items():
        ours = getattr(row, field_name)
        assert close(ours, value), f"{row.name} {field_name}: {ours!r} != {value!r}"


def one_table(spec: Spec, target: dict, mup_settings: MupSettings):
    """The table of one target from the spec's own dims as the base."""
    table = mup_table(spec, {}, [target], mup_settings)
    return table, table.targets[0], rows_of(table.targets[0])


def problems_of(spec: Spec, base: dict, targets: list, mup_settings, **kwargs):
    with pytest.raises(InvalidInput) as raised:
        mup_table(spec, base, targets, mup_settings, **kwargs)
    return raised.value


def problem_at(error: InvalidInput, path: tuple) -> FieldProblem:
    found = [problem for problem in error.problems if problem.path == path]
    assert found, f"no problem at {path}: {[p.path for p in error.problems]}"
    return found[0]


# --- Table 8 (the mup package's form), width only ------------------------------


def test_mlp_3072_adamw_divides_the_hidden_lr_by_m_and_multiplies_its_decay():
    """Base w 256 → 1024 (m = 4), AdamW η = 1e-3, λ = 0.1 (reference/mup.md).

    fc2 (w × w) is matrix-like: lr η/m = 2.5e-4, weight decay λ·m = 0.4, init
    σ/√m = 0.01. Every other tensor keeps η and λ; the readout's forward
    multiplier is α_output/m = 1/4.
    """
    table, target, rows = one_table(mlp_3072(), {"w": 1024}, adamw())

    assert_row(rows["fc2.weight"], lr=2.5e-4, weight_decay=0.4, init_std=0.01)
    assert_row(rows["fc2.weight"], lr_multiplier=0.25, m_in=4.0, m_out=4.0)
    assert rows["fc2.weight"].param_class == "matrix_like"
    assert rows["fc2.weight"].role == "hidden"
    for name in (
        "fc1.weight",
        "fc1.bias",
        "fc2.bias",
        "readout.weight",
        "readout.bias",
    ):
        assert_row(rows[name], lr=1e-3, weight_decay=0.1, lr_multiplier=1.0)
    assert (rows["fc1.weight"].param_class, rows["fc1.weight"].role) == (
        "vector_like",
        "input",
    )
    assert (rows["readout.weight"].param_class, rows["readout.weight"].role) == (
        "vector_like",
        "output",
    )
    assert rows["readout.bias"].param_class == "scalar_like"
    assert_row(rows["readout.weight"], forward_multiplier=0.25, init_std=0.0)
    assert target.output_multiplier == 0.25
    assert_row(rows["fc1.weight"], init_std=0.02, forward_multiplier=1.0)
    assert_row(rows["fc1.bias"], init_std=0.0, init_mean=0.0)
    assert target.width_multipliers == {"w": 4.0}
    assert target.adam_eps == EPS
    assert table.width_dims == ("w",)
    assert table.depth_dims == ()
    assert [row.name for row in target.parameters] == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "readout.weight",
        "readout.bias",
    ]
    # 3072·1024 + 1024 + 1024·1024 + 1024 + 1024·10 + 10
    assert target.parameter_count == 4_206_602
    assert (
        table.base_parameter_count == 3072 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    )


def test_a_target_equal_to_the_base_has_every_multiplier_one():
    """Target {} next to w = 1024: m = 1 everywhere, so every lr is η, every
    forward multiplier α = 1 and every std the base's (torch_default: weights
    and biases U(±1/√fan_in), std 1/√(3·fan_in))."""
    table = mup_table(
        mlp_3072(),
        {},
        [{"w": 1024}, {}],
        adamw(
            init_std=None,
            init_scheme=SchemeChoice("torch_default"),
            readout_zero_init=False,
        ),
    )
    same = table.targets[1]
    base_std = {
        "fc1.weight": 1 / math.sqrt(3 * 3072),
        "fc1.bias": 1 / math.sqrt(3 * 3072),
        "fc2.weight": 1 / math.sqrt(3 * 256),
        "fc2.bias": 1 / math.sqrt(3 * 256),
        "readout.weight": 1 / math.sqrt(3 * 256),
        "readout.bias": 1 / math.sqrt(3 * 256),
    }

    for row in same.parameters:
        assert_row(
            row,
            m_in=1.0,
            m_out=1.0,
            lr_multiplier=1.0,
            lr=ETA,
            weight_decay=LAMBDA,
            forward_multiplier=1.0,
            init_std=base_std[row.name],
        )
        assert row.shape == row.base_shape
    assert same.dims == table.base_dims
    assert same.width_multipliers == {"w": 1.0}
    assert same.output_multiplier == 1.0
    assert "This target's dims equal the base's: every multiplier is 1." in same.notes
    assert not any("equal the base" in note for note in table.targets[0].notes)


# --- Weights stored (in, out) ----------------------------------------------------


def test_in_out_weights_divide_by_the_true_fan_in_and_report_the_packages_values():
    """gpt-conv1d, d_model 64 → 256 (×4), d_ff 256 → 512 (×2).

    h.0.mlp.c_fc.weight maps d_model → d_ff: true m_in = 4, so lr η/4, weight
    decay 4λ, std σ/2. The package reads it as stored, (d_model, d_ff), and
    takes the last width-like axis, d_ff (×2), as fan_in: lr η/2, decay 2λ,
    std σ/√2. c_proj is the mirror image (true m_in 2, the package's 4).
    """
    table, target, rows = one_table(
        gpt("in_out"), {"d_model": 256, "d_ff": 512}, adamw()
    )

    c_fc = rows["h.0.mlp.c_fc.weight"]
    assert c_fc.layout == "in_out"
    assert c_fc.shape == (512, 256)
    assert c_fc.base_shape == (256, 64)
    assert_row(c_fc, m_in=4.0, m_out=2.0, lr=ETA / 4, weight_decay=LAMBDA * 4)
    assert_row(c_fc, init_std=SIGMA / 2)
    assert c_fc.mup_package is not None
    assert close(c_fc.mup_package.lr, ETA / 2)
    assert close(c_fc.mup_package.weight_decay, LAMBDA * 2)
    assert close(c_fc.mup_package.init_std, SIGMA / math.sqrt(2))

    c_proj = rows["h.1.mlp.c_proj.weight"]
    assert_row(c_proj, m_in=2.0, m_out=4.0, lr=ETA / 2, weight_decay=LAMBDA * 2)
    assert_row(c_proj, init_std=SIGMA / math.sqrt(2))
    assert close(c_proj.mup_package.lr, ETA / 4)
    assert close(c_proj.mup_package.weight_decay, LAMBDA * 4)
    assert close(c_proj.mup_package.init_std, SIGMA / 2)

    # d_model × d_model projections: both axes ×4, so the package agrees.
    for name in ("q", "k", "v", "o"):
        assert rows[f"h.0.attn.{name}.weight"].mup_package is None
    differing = [row.name for row in target.parameters if row.mup_package]
    assert differing == [
        "h.0.mlp.c_fc.weight",
        "h.0.mlp.c_proj.weight",
        "h.1.mlp.c_fc.weight",
        "h.1.mlp.c_proj.weight",
    ]
    note = next(note for note in target.notes if "wrong fan_in" in note)
    assert note.startswith("4 tensors (first h.0.mlp.c_fc.weight, stored in_out)")


def test_in_out_weights_get_the_same_numbers_as_out_in_ones():
    """The layout changes how a weight is stored, never its µP numbers."""
    target = {"d_model": 256, "d_ff": 512}
    _, _, stored_in_out = one_table(gpt("in_out"), target, adamw())
    _, _, stored_out_in = one_table(gpt("out_in"), target, adamw())

    for name, row in stored_out_in.items():
        twin = stored_in_out[name]
        assert (twin.lr, twin.weight_decay, twin.init_std) == (
            row.lr,
            row.weight_decay,
            row.init_std,
        ), name
        assert row.mup_package is None


def test_in_out_weights_agree_with_the_package_when_both_axes_scale_alike():
    """d_model and d_ff both ×4 from the base: fan_in and fan_out multipliers
    are equal, so the package's last-axis reading gives the true answer."""
    _, target, rows = one_table(gpt("in_out"), {"d_model": 256, "d_ff": 1024}, adamw())

    assert_row(rows["h.0.mlp.c_fc.weight"], lr=ETA / 4, init_std=SIGMA / 2)
    assert all(row.mup_package is None for row in target.parameters)
    assert not any("wrong fan_in" in note for note in target.notes)


# --- SGD ----------------------------------------------------------------------------


def test_sgd_scales_hidden_lr_by_m_out_over_m_in_and_vectors_by_m():
    """d_model 64 → 256 (×4), d_ff 128 → 256 (×2), MuSGD-style (Table 8):

    fc2 (d_ff ← d_model): lr η·2/4, decay λ·4/2; fc3 (d_model ← d_ff): lr
    η·4/2, decay λ·2/4; vector-like tensors lr η·m, decay λ/m; the readout
    bias (no width) keeps η and λ.
    """
    _, target, rows = one_table(
        two_width_mlp(), {"d_model": 256, "d_ff": 256}, sgd(readout_zero_init=False)
    )

    assert_row(rows["fc2.weight"], m_in=4.0, m_out=2.0, lr=ETA * 2 / 4)
    assert_row(rows["fc2.weight"], weight_decay=LAMBDA * 4 / 2, init_std=SIGMA / 2)
    assert_row(rows["fc3.weight"], m_in=2.0, m_out=4.0, lr=ETA * 4 / 2)
    assert_row(rows["fc3.weight"], weight_decay=LAMBDA * 2 / 4)
    assert_row(rows["fc3.weight"], init_std=SIGMA / math.sqrt(2))
    assert_row(rows["fc1.weight"], lr=ETA * 4, weight_decay=LAMBDA / 4)
    assert_row(rows["fc1.bias"], lr=ETA * 4, weight_decay=LAMBDA / 4)
    assert_row(rows["fc2.bias"], lr=ETA * 2, weight_decay=LAMBDA / 2)
    assert_row(rows["readout.weight"], lr=ETA * 4, weight_decay=LAMBDA / 4)
    assert_row(rows["readout.weight"], init_std=SIGMA, forward_multiplier=0.25)
    assert_row(rows["readout.bias"], lr=ETA, weight_decay=LAMBDA)
    assert target.adam_eps is None
    assert all(group.eps is None for group in target.param_groups)


# --- Table 3: the forward multipliers moved into the weights ------------------


@pytest.mark.parametrize(
    ("optimizer", "absorbed"),
    [("adam", lambda a: a), ("adamw", lambda a: a), ("sgd", lambda a: a * a)],
)
def test_table3_moves_each_forward_multiplier_into_init_and_lr(optimizer, absorbed):
    """w → a·w: std × a, Adam LR × a, SGD LR × a², forward multiplier 1.

    d_model ×4, α_output = 2, α_input = 3: the readout's a = α_output/m_in =
    1/2 (std σ·α/m_in, Adam lr η·α/m_in, SGD lr η·m_in·(α/m_in)² = η·α²/m_in);
    fc1's a = α_input = 3. lr·weight_decay stays the Table 8 row's (the decay
    a weight sees per step does not depend on how it is written).
    """
    alpha_out, alpha_in, m = 2.0, 3.0, 4.0
    common = dict(
        optimizer=optimizer,
        lr=ETA,
        weight_decay=LAMBDA,
        readout_zero_init=False,
        output_multiplier=alpha_out,
        input_multiplier=alpha_in,
    )
    dims = {"d_model": 256, "d_ff": 512}
    _, table8, table8_rows = one_table(two_width_mlp(), dims, MupSettings(**common))
    _, table3, table3_rows = one_table(
        two_width_mlp(), dims, MupSettings(**common, form="table3")
    )

    readout = table3_rows["readout.weight"]
    a = alpha_out / m
    assert_row(readout, init_std=SIGMA * a, forward_multiplier=1.0)
    assert_row(readout, lr=table8_rows["readout.weight"].lr * absorbed(a))
    if optimizer == "sgd":
        assert_row(readout, lr=ETA * alpha_out**2 / m)
    else:
        assert_row(readout, lr=ETA * alpha_out / m)
    assert table8_rows["readout.weight"].forward_multiplier == a

    fc1 = table3_rows["fc1.weight"]
    assert_row(fc1, init_std=SIGMA * alpha_in, forward_multiplier=1.0)
    assert_row(fc1, lr=table8_rows["fc1.weight"].lr * absorbed(alpha_in))
    assert table8_rows["fc1.weight"].forward_multiplier == alpha_in

    for name, row in table3_rows.items():
        twin = table8_rows[name]
        assert close(row.lr * row.weight_decay, twin.lr * twin.weight_decay), name
        assert row.forward_multiplier == 1.0, name
    for name in ("fc2.weight", "fc3.weight", "fc2.bias", "readout.bias"):
        twin = table8_rows[name]
        assert_row(table3_rows[name], lr=twin.lr, init_std=twin.init_std)
    assert (table3.output_multiplier, table3.input_multiplier) == (1.0, 1.0)
    assert (table8.output_multiplier, table8.input_multiplier) == (a, alpha_in)


# --- Practitioner form: one width multiplier m_d --------------------------------


def test_practitioner_form_uses_m_d_and_flags_widths_that_scale_apart():
    """d_model ×4, d_ff ×2: m_d = 4 stands in for fc3's own fan_in multiplier
    2, so fc3 gets η/4 and σ/2 (not η/2 and σ/√2) and says so."""
    dims = {"d_model": 256, "d_ff": 256}
    table, target, rows = one_table(
        two_width_mlp(),
        dims,
        MupSettings(optimizer="adam", lr=ETA, form="practitioner"),
    )
    _, _, per_dim = one_table(two_width_mlp(), dims, MupSettings("adam", ETA))

    assert table.width_dim == "d_model"
    assert_row(rows["fc3.weight"], lr=ETA / 4, init_std=SIGMA / 2, m_in=2.0)
    assert_row(per_dim["fc3.weight"], lr=ETA / 2, init_std=SIGMA / math.sqrt(2))
    assert any(
        "m_d = 4 (d_model)" in note and "own 2" in note
        for note in rows["fc3.weight"].notes
    )
    assert_row(rows["fc2.weight"], lr=ETA / 4, init_std=SIGMA / 2)
    assert rows["fc2.weight"].notes == ()
    assert_row(rows["readout.weight"], forward_multiplier=0.25, lr=ETA)
    assert any("in proportion to d_model" in note for note in target.notes)


def test_practitioner_form_is_silent_when_every_width_scales_with_d_model():
    _, target, rows = one_table(
        two_width_mlp(),
        {"d_model": 256, "d_ff": 512},
        MupSettings(optimizer="adam", lr=ETA, form="practitioner"),
    )

    assert_row(rows["fc3.weight"], lr=ETA / 4, init_std=SIGMA / 2)
    assert all(row.notes == () for row in target.parameters)
    assert target.notes == ()


# --- Depth ------------------------------------------------------------------------

DEEPER_AND_WIDER = {"n_layer": 8, "d_model": 256, "d_ff": 1024}


def block_rows(target: MupTarget) -> list[MupRow]:
    return [row for row in target.parameters if row.name.startswith("h.")]


def test_completep_alpha_one_scales_branches_and_eps_but_not_block_lr():
    """n_layer 2 → 8 (m_L = 16/4 = 4 residual branches), d_model ×4 (m_N = 4).

    CompleteP, α = 1: branch × m_L^-1 = 1/4; hidden Adam LR η·m_N⁻¹·m_L^0 =
    η/4 (no depth correction); ε·m_N⁻¹·m_L⁻¹ = 1e-8/16.
    """
    table, target, rows = one_table(
        gpt(), DEEPER_AND_WIDER, adamw(depth=DepthRule("completep", 1.0))
    )

    assert target.residual_multiplier == 0.25
    assert target.depth_multiplier == 4.0
    assert (target.residual_branch_count, table.base_residual_branch_count) == (16, 4)
    assert close(target.adam_eps, EPS / 4 / 4)
    assert all(close(group.eps, EPS / 16) for group in target.param_groups)
    assert table.depth_dims == ("n_layer",)
    assert table.width_dim == "d_model"
    for index in range(8):
        assert_row(rows[f"h.{index}.mlp.c_fc.weight"], lr=ETA / 4, init_std=SIGMA / 2)
        assert_row(rows[f"h.{index}.ln_1.weight"], lr=ETA, init_mean=1.0)
        assert rows[f"h.{index}.attn.q.weight"].depth_scaled
    for name in ("wte.weight", "wpe.weight", "ln_f.weight", "lm_head.weight"):
        assert not rows[name].depth_scaled, name
        assert_row(rows[name], lr=ETA)
    assert any("Depth multiplier m_L = 4" in note for note in target.notes)


def test_the_rows_of_a_deeper_target_are_the_expanded_targets():
    """8 blocks of 16 tensors between the embeddings and ln_f and lm_head."""
    _, target, rows = one_table(
        gpt(), DEEPER_AND_WIDER, adamw(depth=DepthRule("completep", 1.0))
    )
    spec = gpt()
    expanded = expand(dataclasses.replace(spec, dims={**spec.dims, **DEEPER_AND_WIDER}))

    assert [row.name for row in target.parameters] == [
        tensor.name for tensor in expanded.parameters
    ]
    assert [row.shape for row in target.parameters] == [
        tensor.shape for tensor in expanded.parameters
    ]
    assert len(target.parameters) == 2 + 8 * 16 + 2 + 1
    assert target.parameter_count == expanded.parameter_count
    # wte 1000·256 + wpe 128·256 + 8·(4 LN·256 + 4·(256² + 256)
    # + 256·1024 + 1024 + 1024·256 + 256) + ln_f 2·256 + lm_head 256·1000
    assert target.parameter_count == 6_863_360
    assert rows["h.7.mlp.c_proj.weight"].base_shape == (64, 256)


@pytest.mark.parametrize(
    "rule", [DepthRule("completep", 0.5), DepthRule("depth_mup", 0.5)]
)
def test_alpha_one_half_scales_branches_and_block_lr_by_one_over_root_m_L(rule):
    """α = ½ (depth-µP, or CompleteP at α = ½), m_L = 4: branch × 4^-½ = ½,
    block Adam LR × m_L^(α−1) = ½, ε·m_N⁻¹·m_L^-½ = 1e-8/4/2."""
    _, target, rows = one_table(gpt(), DEEPER_AND_WIDER, adamw(depth=rule))

    assert target.residual_multiplier == 0.5
    assert close(target.adam_eps, EPS / 4 / 2)
    assert_row(rows["h.3.attn.o.weight"], lr=ETA / 4 * 0.5, init_std=SIGMA / 2)
    assert_row(rows["h.3.attn.o.bias"], lr=ETA * 0.5)
    assert_row(rows["h.3.ln_2.bias"], lr=ETA * 0.5)
    assert_row(rows["wte.weight"], lr=ETA)
    assert_row(rows["lm_head.weight"], lr=ETA, forward_multiplier=0.25)
    assert all(row.depth_scaled for row in block_rows(target))


def test_depth_mup_with_sgd_keeps_the_width_learning_rates():
    """Tensor Programs VI: SGD needs no depth correction of the LR at α = ½."""
    _, target, rows = one_table(
        gpt(), DEEPER_AND_WIDER, sgd(depth=DepthRule("depth_mup", 0.5))
    )

    assert target.residual_multiplier == 0.5
    assert target.adam_eps is None
    # Width only: hidden η·m_out/m_in = η; vector-like η·m = 4η.
    assert_row(rows["h.5.mlp.c_fc.weight"], lr=ETA, weight_decay=LAMBDA)
    assert_row(rows["h.5.mlp.c_fc.bias"], lr=ETA * 4, weight_decay=LAMBDA / 4)
    assert_row(rows["h.5.ln_1.weight"], lr=ETA * 4)
    assert_row(rows["wte.weight"], lr=ETA * 4)


@pytest.mark.parametrize(
    ("convention", "hidden_decay", "vector_decay"),
    [
        # The package's width scaling, left alone by the depth rule.
        ("mup_package", LAMBDA * 4, LAMBDA),
        ("unscaled", LAMBDA, LAMBDA),
        # lr·wd = η·λ: hidden lr η/4·½ → 8λ; block vectors η·½ → 2λ.
        ("independent", LAMBDA * 8, LAMBDA * 2),
    ],
)
def test_weight_decay_conventions_under_a_depth_rule(
    convention, hidden_decay, vector_decay
):
    _, target, rows = one_table(
        gpt(),
        DEEPER_AND_WIDER,
        adamw(depth=DepthRule("completep", 0.5), weight_decay_convention=convention),
    )

    assert_row(rows["h.2.mlp.c_proj.weight"], lr=ETA / 8, weight_decay=hidden_decay)
    assert_row(rows["h.2.ln_2.weight"], lr=ETA / 2, weight_decay=vector_decay)
    assert_row(rows["wte.weight"], lr=ETA, weight_decay=LAMBDA)
    if convention == "independent":
        for row in target.parameters:
            assert close(row.lr * row.weight_decay, ETA * LAMBDA), row.name


# --- Attention ----------------------------------------------------------------------


def test_attention_scale_is_alpha_root_d_head_base_over_d_head():
    """4 heads, d_model 64 → 256: d_head 16 → 64; α_attn = 1.5 gives
    1.5·√16/64 = 0.09375; the base-sized target keeps 1.5/√16."""
    table = mup_table(
        gpt(),
        {},
        [{"d_model": 256, "d_ff": 1024}, {}],
        adamw(attention_multiplier=1.5),
    )
    wider, same = table.targets

    assert wider.attention_scale == pytest.approx(1.5 * 4 / 64, rel=1e-15)
    assert [(a.layer, a.d_head_base, a.d_head) for a in wider.attention] == [
        ("h.0.attn", 16, 64),
        ("h.1.attn", 16, 64),
    ]
    assert all(close(a.scale, 0.09375) for a in wider.attention)
    assert close(same.attention_scale, 1.5 / math.sqrt(16))


def test_more_heads_of_the_same_size_keep_the_base_attention_scale():
    """n_head 4 → 16 with d_model 64 → 256: d_head stays 16, so 1/√16."""
    _, target, _ = one_table(
        gpt(), {"d_model": 256, "d_ff": 1024, "n_head": 16}, adamw()
    )

    assert target.attention_scale == 0.25
    assert {(a.d_head_base, a.d_head) for a in target.attention} == {(16, 16)}


def test_query_zero_init_zeroes_only_the_query_weight():
    _, _, rows = one_table(
        gpt(), {"d_model": 256, "d_ff": 1024}, adamw(query_zero_init=True)
    )

    assert_row(rows["h.0.attn.q.weight"], init_std=0.0, lr=ETA / 4)
    assert_row(rows["h.0.attn.k.weight"], init_std=SIGMA / 2)


# --- Base stds from a scheme -----------------------------------------------------


def test_torch_default_base_stds_scale_as_one_over_root_m_in_for_hidden_weights():
    """w 256 → 1024 under PyTorch's default init (std 1/√(3·fan_in) at the
    base): fc2's std becomes 1/√(3·256)/2 = 1/√(3·1024), what PyTorch would
    draw at the target; fc1, every bias and the readout keep the base's std,
    and the readout bias note names the package's √m = 2 rescale."""
    table, target, rows = one_table(
        mlp_3072(),
        {"w": 1024},
        adamw(
            init_std=None,
            init_scheme=SchemeChoice("torch_default"),
            readout_zero_init=False,
        ),
    )
    at_base_256 = 1 / math.sqrt(3 * 256)

    assert_row(rows["fc2.weight"], init_std=at_base_256 / 2)
    assert_row(rows["fc2.weight"], init_std=1 / math.sqrt(3 * 1024))
    assert_row(rows["fc1.weight"], init_std=1 / 96)
    assert_row(rows["fc1.bias"], init_std=1 / 96)
    assert_row(rows["fc2.bias"], init_std=at_base_256)
    assert_row(rows["readout.weight"], init_std=at_base_256)
    assert_row(rows["readout.bias"], init_std=at_base_256)
    readout_note = next(
        note for note in target.notes if note.startswith("readout.bias")
    )
    assert "√m = 2" in readout_note
    assert any("torch_default" in note for note in table.notes)


def test_a_zero_initialized_readout_has_zero_stds_and_no_bias_note():
    _, target, rows = one_table(
        mlp_3072(),
        {"w": 1024},
        adamw(init_std=None, init_scheme=SchemeChoice("torch_default")),
    )

    assert_row(rows["readout.weight"], init_std=0.0, init_mean=0.0)
    assert_row(rows["readout.bias"], init_std=0.0)
    assert not any(note.startswith("readout.bias") for note in target.notes)


# --- Parameter groups and tied embeddings ---------------------------------------


def test_param_groups_merge_equal_settings_and_list_a_tied_tensor_once():
    """d 64 → 256 (m = 4), AdamW: fc.weight alone at (η/4, 4λ), everything
    else at (η, λ); lm_head shares wte and is not listed again."""
    _, target, rows = one_table(tied_lm(), {"d": 256}, adamw())

    groups = [
        (group.params, group.lr, group.weight_decay, group.eps)
        for group in target.param_groups
    ]
    assert groups == [
        (("wte.weight", "fc.bias", "ln.weight", "ln.bias"), ETA, LAMBDA, EPS),
        (("fc.weight",), ETA / 4, LAMBDA * 4, EPS),
    ]
    listed = [name for group in target.param_groups for name in group.params]
    assert sorted(listed) == sorted(
        row.name for row in target.parameters if row.tied_to is None
    )
    head = rows["lm_head.weight"]
    assert head.tied_to == "wte.weight"
    assert head.role == "output"
    assert_row(head, forward_multiplier=0.25, init_std=SIGMA, lr=ETA)
    # 100·256 shared + 256·256 + 256 + 2·256
    assert target.parameter_count == 91_904


def test_a_tied_embedding_note_gives_the_packages_root_m_rescale():
    _, target, _ = one_table(tied_lm(), {"d": 256}, adamw())

    note = next(note for note in target.notes if "MuSharedReadout" in note)
    assert note.startswith("lm_head.weight shares wte.weight")
    assert "√m = 2" in note
    assert "std 0.02" in note and "std 0.04" in note


def test_a_tied_embedding_under_sgd_is_vector_like():
    """The shared weight: SGD × m = 4η, decay λ/4, logits × 1/m."""
    _, _, rows = one_table(tied_lm(), {"d": 256}, sgd())

    assert_row(rows["wte.weight"], lr=ETA * 4, weight_decay=LAMBDA / 4)
    assert rows["wte.weight"].param_class == "vector_like"
    assert_row(rows["lm_head.weight"], forward_multiplier=0.25)


# --- Errors -------------------------------------------------------------------------


def test_an_unknown_dim_in_base_dims_suggests_the_closest():
    error = problems_of(gpt(), {"d_modle": 32}, [{"d_model": 256}], adamw())

    problem = problem_at(error, ("base_dims", "d_modle"))
    assert 'did you mean "d_model"?' in problem.message
    assert problem.value == "d_modle"


def test_unknown_dims_in_targets_carry_the_target_index():
    error = problems_of(
        gpt(),
        {},
        [{"d_model": 256, "d_ff": 1024}, {"d_mdel": 256}, {"xyz": 3}],
        adamw(),
    )

    assert [problem.path for problem in error.problems] == [
        ("targets", 1, "d_mdel"),
        ("targets", 2, "xyz"),
    ]
    assert 'did you mean "d_model"?' in error.problems[0].message
    assert "vocab, n_positions, d_model, d_ff, n_layer, n_head" in (
        error.problems[1].message
    )


def test_a_width_left_equal_behind_a_scaled_input_names_the_tensor():
    """d_model scaled, d_ff not: c_fc reads a width-like input into a fixed
    output, which µP would treat as a second readout."""
    error = problems_of(gpt(), {}, [{"d_model": 256}], adamw())

    problem = problem_at(error, ("targets", 0))
    assert problem.message.startswith("h.0.mlp.c_fc.weight reads a width-like input")
    assert "width_dims" in problem.message


def test_a_depth_change_without_a_depth_rule_points_at_the_repeat_count():
    error = problems_of(
        gpt(), {}, [{"d_model": 256, "d_ff": 1024}, {"n_layer": 4}], adamw()
    )

    problem = problem_at(error, ("targets", 1, "n_layer"))
    assert "from 2 to 4" in problem.message
    assert '"depth": {"rule": "completep"}' in problem.message
    assert problem.value == 4


def test_completep_with_sgd_is_refused():
    error = problems_of(
        gpt(), {}, [DEEPER_AND_WIDER], sgd(depth=DepthRule("completep", 1.0))
    )

    problem = problem_at(error, ("depth", "rule"))
    assert "depth_mup" in problem.message


def test_declared_width_dims_must_be_widths_of_the_spec():
    error = problems_of(
        gpt(),
        {},
        [{"d_model": 256, "d_ff": 1024}],
        adamw(width_dims=("d_model", "d_fff", "n_layer")),
    )

    assert 'did you mean "d_ff"?' in problem_at(error, ("width_dims", 1)).message
    assert "repeat count" in problem_at(error, ("width_dims", 2)).message
    undeclared = problem_at(error, ("targets", 0, "d_ff"))
    assert "not in width_dims" in undeclared.message


def test_a_declared_width_that_no_target_changes_is_still_width_like():
    """d_ff declared, left at 256: the package's delta model makes it
    width-like, so c_fc is matrix-like with m_out = 1 (no second readout)."""
    _, _, rows = one_table(
        gpt(), {"d_model": 256}, adamw(width_dims=("d_model", "d_ff"))
    )

    assert rows["h.0.mlp.c_fc.weight"].param_class == "matrix_like"
    assert_row(rows["h.0.mlp.c_fc.weight"], m_in=4.0, m_out=1.0, lr=ETA / 4)
    assert_row(rows["h.0.mlp.c_fc.bias"], m_out=1.0, lr=ETA)


def test_width_dim_must_be_a_dim_and_not_a_repeat_count():
    """width_dim names the residual-stream width (m_N, m_d): a repeat count is
    a depth, and an unknown name gets the closest dim."""
    targets = [{"d_model": 256, "d_ff": 1024}]
    depth = problems_of(gpt(), {}, targets, adamw(width_dim="n_layer"))
    unknown = problems_of(gpt(), {}, targets, adamw(width_dim="d_modl"))

    assert "repeat count" in problem_at(depth, ("width_dim",)).message
    assert 'did you mean "d_model"?' in problem_at(unknown, ("width_dim",)).message


def test_a_depth_only_change_uses_d_model_as_the_unchanged_width():
    """n_layer 2 → 8 at d_model 64: m_N = 1, m_L = 4. CompleteP α = 1: no
    tensor is width-like, so every lr is η; ε·m_N⁻¹·m_L⁻¹ = ε/4."""
    table, target, rows = one_table(
        gpt(), {"n_layer": 8}, adamw(depth=DepthRule("completep", 1.0))
    )

    assert table.width_dim == "d_model"
    assert table.width_dims == ()
    assert target.residual_multiplier == 0.25
    assert close(target.adam_eps, EPS / 4)
    assert all(close(row.lr, ETA) for row in target.parameters)
    assert all(row.param_class == "scalar_like" for row in target.parameters)


def test_the_practitioner_form_needs_a_width_dim_when_there_is_no_d_model():
    spec = dataclasses.replace(
        two_width_mlp(),
        dims={"d": 64, "f": 128},
        layers=(
            LinearSpec(name="fc1", in_features=32, out_features="d"),
            LinearSpec(name="fc2", in_features="d", out_features="f"),
            LinearSpec(name="fc3", in_features="f", out_features="d"),
            LinearSpec(name="readout", in_features="d", out_features=10),
        ),
    )
    error = problems_of(spec, {}, [{"d": 256, "f": 256}], adamw(form="practitioner"))

    assert "name the residual-stream width" in problem_at(error, ("width_dim",)).message


def test_a_tensor_with_more_than_two_width_like_axes_is_refused():
    """body.weight (c, c, k, k) with c and k both changing: four axes."""
    error = problems_of(conv_net(), {}, [{"c": 64, "k": 5}], adamw())

    problem = problem_at(error, ("targets", 0))
    assert problem.message.startswith("body.weight has 4 width-like axes")


def test_a_conv_with_a_fixed_kernel_is_matrix_like_on_its_channels():
    _, _, rows = one_table(conv_net(), {"c": 64}, adamw())

    body = rows["body.weight"]
    assert body.param_class == "matrix_like"
    assert body.width_dims == ("c", "c")
    assert_row(body, m_in=4.0, m_out=4.0, lr=ETA / 4, init_std=SIGMA / 2)


def test_a_depth_rule_needs_residual_groups_to_scale():
    """n 2 → 4 in a stack without residual groups: no branch to scale."""
    error = problems_of(
        plain_deep_mlp(),
        {},
        [{"d": 64, "n": 4}],
        adamw(depth=DepthRule("completep", 1.0)),
    )

    problem = problem_at(error, ("depth",))
    assert "residual" in problem.message


def test_too_many_targets_are_refused_naming_the_limit():
    with pytest.raises(LimitExceeded) as raised:
        mup_table(
            gpt(),
            {},
            [{"d_model": 256, "d_ff": 1024}] * 3,
            adamw(),
            limits=MupLimits(max_mup_targets=2),
        )

    error = raised.value
    assert (error.limit, error.limit_value) == ("max_mup_targets", 2)
    assert error.problems[0].path == ("targets",)
    assert "max_mup_targets" in error.problems[0].message


def test_too_many_rows_are_refused_naming_the_limit():
    """Three targets of 37 tensors (2 + 2·16 + 3) are 111 rows."""
    with pytest.raises(LimitExceeded) as raised:
        mup_table(
            gpt(),
            {},
            [{"d_model": 256, "d_ff": 1024}] * 3,
            adamw(),
            limits=MupLimits(max_mup_rows=110),
        )

    error = raised.value
    assert (error.limit, error.limit_value) == ("max_mup_rows", 110)
    assert error.problems[0].value == 111
    assert "max_mup_rows" in error.problems[0].message


def test_rows_at_the_limit_are_answered():
    table = mup_table(
        gpt(),
        {},
        [{"d_model": 256, "d_ff": 1024}] * 3,
        adamw(),
        limits=MupLimits(max_mup_rows=111),
    )

    assert [len(target.parameters) for target in table.targets] == [37, 37, 37]


# --- Properties ---------------------------------------------------------------------

WIDTHS = st.integers(min_value=1, max_value=4096)


@st.composite
def base_and_target(draw) -> tuple[dict[str, int], dict[str, int]]:
    """Base and target d_model and d_ff, each changed between the two."""
    base = {"d_model": draw(WIDTHS), "d_ff": draw(WIDTHS)}
    target = {
        name: draw(WIDTHS.filter(lambda size, old=size: size != old))
        for name, size in base.items()
    }
    return base, target


@settings(max_examples=60, deadline=None)
@given(
    dims=base_and_target(),
    optimizer=st.sampled_from(["adamw", "adam", "sgd"]),
    lr=st.floats(min_value=1e-6, max_value=1.0),
    weight_decay=st.floats(min_value=1e-4, max_value=1.0),
    std=st.floats(min_value=1e-4, max_value=1.0),
)
def test_properties_of_width_scaling(dims, optimizer, lr, weight_decay, std):
    """Adam hidden lr·m_in = η, hidden init std²·m_in = σ², lr·wd = η·λ on
    every tensor (mup_package convention), and the table is a pure function."""
    base, target = dims
    mup_settings = MupSettings(
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, init_std=std
    )
    table = mup_table(two_width_mlp(), base, [target], mup_settings)
    again = mup_table(two_width_mlp(), base, [target], mup_settings)

    assert isinstance(table, MupTable)
    assert table == again
    rows = rows_of(table.targets[0])
    for name, fan_in in (("fc2.weight", "d_model"), ("fc3.weight", "d_ff")):
        row = rows[name]
        m_in = target[fan_in] / base[fan_in]
        assert row.param_class == "matrix_like"
        assert close(row.m_in, m_in)
        assert close(row.init_std**2 * m_in, std**2)
        if optimizer != "sgd":
            assert close(row.lr * m_in, lr)
    for row in rows.values():
        assert close(row.lr * row.weight_decay, lr * weight_decay), row.name


# --- Readouts inside repeats, limits through a target's dims -----------------------


def stacked_mlp(readout: bool) -> Spec:
    """4 → w, then a repeat of w → w whose last copy ends the network; with
    ``readout``, a residual repeat followed by a w → 3 readout."""
    if not readout:
        return Spec(
            dims={"w": 64, "n": 2},
            layers=(
                LinearSpec(name="fc0", in_features=4, out_features="w"),
                RepeatGroup(
                    name="h",
                    count="n",
                    layers=(LinearSpec(name="fc", in_features="w", out_features="w"),),
                ),
            ),
        )
    return Spec(
        dims={"w": 64, "n": 2},
        layers=(
            LinearSpec(name="fc0", in_features=4, out_features="w"),
            RepeatGroup(
                name="h",
                count="n",
                layers=(
                    ResidualGroup(
                        norm="pre",
                        layers=(
                            LinearSpec(name="fc", in_features="w", out_features="w"),
                        ),
                    ),
                ),
            ),
            LinearSpec(name="readout", in_features="w", out_features=3),
        ),
    )


def test_a_last_layer_whose_output_grows_is_hidden_and_there_is_no_readout():
    # The last copy of h is the spec's last weight layer; its output is w, so
    # µP reads it as hidden: Adam lr η/m with m = 2, no forward multiplier.
    table = mup_table(
        stacked_mlp(readout=False), {}, [{"w": 128}], MupSettings("adam", lr=ETA)
    )
    target = table.targets[0]
    last = target.parameters[-2]

    assert last.name == "h.1.fc.weight"
    assert (last.role, last.param_class) == ("hidden", "matrix_like")
    assert last.lr == pytest.approx(ETA / 2, rel=RELATIVE_TOLERANCE)
    assert last.forward_multiplier == 1.0
    assert target.output_multiplier is None
    assert any("No readout" in note for note in target.notes)


def test_a_readout_after_a_repeat_keeps_its_own_row_when_copies_share_one():
    table = mup_table(
        stacked_mlp(readout=True),
        {},
        [{"w": 256}],
        MupSettings("adam", lr=ETA, output_multiplier=2.0),
    )
    rows = {row.name: row for row in table.targets[0].parameters}

    assert rows["h.1.fc.weight"].role == "hidden"
    assert rows["readout.weight"].role == "output"
    # α_output/m_in = 2/4, and the zero readout.
    assert rows["readout.weight"].forward_multiplier == 0.5
    assert rows["readout.weight"].init_std == 0.0


def test_a_repeat_count_over_the_limit_in_a_target_points_at_the_target():
    with pytest.raises(LimitExceeded) as caught:
        mup_table(
            stacked_mlp(readout=True),
            {},
            [{"w": 128}, {"w": 128, "n": 10**6}],
            MupSettings("adam", lr=ETA, depth=DepthRule("completep", 1.0)),
        )

    assert caught.value.limit == "max_repeat_count"
    assert [problem.path for problem in caught.value.problems] == [("targets", 1)]
    assert "1000000" in caught.value.problems[0].message


def test_a_problem_every_target_shares_is_reported_once():
    # No residual groups, so the depth rule has nothing to scale in any target.
    with pytest.raises(InvalidInput) as caught:
        mup_table(
            stacked_mlp(readout=False),
            {},
            [{"w": 128, "n": 4}, {"w": 256, "n": 4}, {"w": 512, "n": 4}],
            MupSettings("adam", lr=ETA, depth=DepthRule("completep", 1.0)),
        )

    assert [problem.path for problem in caught.value.problems] == [("depth",)]


# --- Tied weights, the practitioner's m_d, a declared width no target changes -----


def tied_small_lm() -> Spec:
    """vocab 50 → d embedding, one d → d layer, a readout tied to the embedding."""
    return Spec(
        dims={"vocab": 50, "d": 16},
        layers=(
            EmbeddingSpec(name="e", in_features="vocab", out_features="d"),
            LinearSpec(name="m", in_features="d", out_features="d"),
            LinearSpec(name="h", in_features="d", out_features="vocab", tied_to="e"),
        ),
    )


@pytest.mark.parametrize("form", ["mup_package", "table3"])
def test_a_tied_readout_carries_its_embeddings_values_and_the_logits_agree(form):
    # d 16 → 64 (m = 4), α_in 4, α_out 1. The shared weight holds neither
    # multiplier in table3, so the logits scale as in Table 8:
    # e std σ, forward α_in = 4; h forward α_out/m = 0.25.
    table = mup_table(
        tied_small_lm(),
        {},
        [{"d": 64}],
        MupSettings("adam", lr=ETA, input_multiplier=4.0, form=form),
    )
    rows = {row.name: row for row in table.targets[0].parameters}
    embedding, readout = rows["e.weight"], rows["h.weight"]

    assert (readout.lr, readout.init_std) == (embedding.lr, embedding.init_std)
    assert embedding.init_std == SIGMA
    assert embedding.forward_multiplier == 4.0
    assert readout.forward_multiplier == 0.25
    assert readout.weight_decay == embedding.weight_decay


def test_the_practitioner_form_refuses_a_width_dim_that_does_not_scale():
    with pytest.raises(InvalidInput) as caught:
        mup_table(
            two_width_mlp(),
            {},
            [{"d_ff": 512}],
            MupSettings("adam", lr=ETA, form="practitioner", width_dim="d_model"),
        )

    (problem,) = caught.value.problems
    assert problem.path == ("width_dim",)
    assert "name one of d_ff" in problem.message


def test_the_practitioner_readout_says_when_m_d_stands_in_for_its_own_multiplier():
    # a ×4 is m_d, b ×8; the readout reads b, so its own multiplier is 8.
    spec = Spec(
        dims={"a": 64, "b": 128},
        layers=(
            LinearSpec(name="l1", in_features=32, out_features="a"),
            LinearSpec(name="l2", in_features="a", out_features="b"),
            LinearSpec(name="l3", in_features="b", out_features=10),
        ),
    )
    table = mup_table(
        spec,
        {},
        [{"a": 256, "b": 1024}],
        MupSettings("adam", lr=ETA, form="practitioner", width_dim="a"),
    )
    readout = table.targets[0].parameters[-2]

    assert readout.name == "l3.weight"
    assert readout.m_in == 8.0
    assert readout.forward_multiplier == 0.25  # α/m_d with m_d = 4
    assert any("m_d = 4" in note for note in readout.notes)


def test_a_declared_width_whose_doubling_breaks_the_spec_is_a_problem_not_a_crash():
    # 4 heads, 4 key/value heads: doubling n_kv (8) no longer divides n_heads.
    spec = Spec(
        dims={"d": 16, "n_heads": 4, "n_kv": 4},
        layers=(
            LinearSpec(name="fc", in_features=8, out_features="d"),
            AttentionSpec(
                name="attn", d_model="d", n_heads="n_heads", n_kv_heads="n_kv"
            ),
            LinearSpec(name="head", in_features="d", out_features=3),
        ),
    )
    with pytest.raises(InvalidInput) as caught:
        mup_table(spec, {}, [{}], MupSettings("adam", lr=ETA, width_dims=("n_kv",)))

    (problem,) = caught.value.problems
    assert problem.path == ("width_dims",)
    assert "doubled" in problem.message
    assert "give a target that changes them" in problem.message
