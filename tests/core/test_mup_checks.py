"""initlab.core.mup_checks: the coordinate check and the learning-rate transfer check.

The acceptance criteria of Tensor Programs V (Yang et al. 2022, §7 and
Figure 1) on the MLP 32 → w → w → 10 with ReLUs of
tests/fixtures/mup/coord-mlp.spec.json, widths 64 to 2048:

- under µP every hidden layer's mean |x| is flat in width after the first
  update (|slope of log2 mean |x| against log2 width| < 0.1 at t ≥ 2);
- under SP the hidden layer grows: slope above 0.5 at t = 2;
- the µP readout at init (t = 1, readout not zeroed) scales as 1/√width
  (slope −0.5), and is exactly 0 when zero-initialized;
- in the transfer check the best learning rate moves by at most one grid step
  under µP and by at least two under SP.

With the checks' SP (init variance 1/fan_in, Tensor Programs V's standard
parametrization) the SP hidden slope at t = 2 is 0.53 under Adam lr 1e-2. Under
SGD lr 0.1 it stays near 0 (−0.008): after one SGD step a hidden
pre-activation moves by at most √width (slope ≤ ½ in theory), and the readout
gradient's batch mean nearly cancels; the mup package 1.0.0 itself gives
−0.005 on the same model. Under SGD the SP readout is what grows, which is
asserted instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from initlab.core.errors import InvalidInput, LimitExceeded
from initlab.core.mup_checks import (
    DEFAULT_TRANSFER_WIDTHS,
    FLAT_SLOPE,
    coord_check,
    default_mlp_spec,
    transfer_check,
)
from initlab.core.spec import (
    LinearSpec,
    NormLayerSpec,
    RepeatGroup,
    ResidualGroup,
    Spec,
    expand,
)
from initlab.core.types import Activation, SchemeChoice
from initlab.web.schemas.spec import load_spec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mup"
WIDTHS = (64, 128, 256, 512, 1024, 2048)
BASE = {"w": 64}
OPTIMIZERS = {"adam": 1e-2, "sgd": 0.1}


def mlp() -> Spec:
    return load_spec(json.loads((FIXTURES / "coord-mlp.spec.json").read_text()))


@pytest.fixture(scope="module", params=sorted(OPTIMIZERS))
def checks(request):
    """The acceptance coordinate checks of one optimizer: 4 steps, 3 seeds,
    readout not zeroed and zeroed."""
    optimizer = request.param
    arguments = {
        "base_dims": BASE,
        "widths": WIDTHS,
        "optimizer": optimizer,
        "lr": OPTIMIZERS[optimizer],
        "steps": 4,
        "seeds": 3,
    }
    plain = coord_check(mlp(), **arguments)
    zeroed = coord_check(mlp(), readout_zero_init=True, **arguments)
    return plain, zeroed


@pytest.fixture(scope="module")
def default_transfer():
    return transfer_check()


# --- the coordinate check's acceptance criteria --------------------------------------


def test_the_fixture_is_the_default_spec():
    fixture = expand(mlp())
    default = expand(dataclasses.replace(default_mlp_spec(), dims=mlp().dims))
    assert fixture.parameters == default.parameters


def test_mup_hidden_layers_are_flat(checks):
    for result in checks:
        mup = result.parametrization("mup")
        hidden = [layer for layer in mup.layers if layer.role == "hidden"]
        assert [layer.name for layer in hidden] == ["fc2"]
        for layer in hidden:
            for slope in layer.slopes[1:]:
                assert abs(slope) < FLAT_SLOPE
            assert layer.verdict == "flat"
        assert mup.hidden_flat
        assert mup.summary == "µP: all hidden layers flat (|slope| < 0.1 at t ≥ 2)."
        # The input layer does not change with width either.
        assert mup.layer("fc1").verdict == "flat"


def test_sp_grows_where_mup_stays_flat(checks):
    """Under SP the readout (and, with Adam, the hidden layer, whose slope
    exceeds ½ from t = 2) grows with width after the first update, while µP's
    hidden layer stays."""
    plain, _ = checks
    sp = plain.parametrization("sp")
    readout = sp.layer("readout")
    assert readout.verdict == "grows"
    assert readout.slopes[1] > 0.3
    assert readout.largest_slope > 0.5
    assert not sp.hidden_flat or plain.optimizer == "sgd"
    if plain.optimizer == "adam":
        hidden = sp.layer("fc2")
        assert hidden.verdict == "grows"
        assert hidden.slopes[1] > 0.5
        assert hidden.slopes[1] < hidden.slopes[2] < hidden.slopes[3]
        assert hidden.slopes[3] > 0.6
        assert hidden.largest_slope > 0.6
        assert hidden.largest_slope_step == 4
        assert sp.summary.startswith("SP: 1 of 1 hidden layers not flat: fc2 grows")


def test_mup_readout_at_init_scales_as_one_over_root_width(checks):
    plain, _ = checks
    readout = plain.parametrization("mup").layer("readout")
    assert readout.role == "output"
    assert readout.slopes[0] == pytest.approx(-0.5, abs=0.1)
    # SP's readout at init (std 1/√width on width inputs) is flat.
    assert abs(plain.parametrization("sp").layer("readout").slopes[0]) < FLAT_SLOPE


def test_zero_readout_is_exactly_zero_at_init(checks):
    _, zeroed = checks
    readout = zeroed.parametrization("mup").layer("readout")
    assert readout.mean[0] == (0.0,) * len(WIDTHS)
    assert readout.sd[0] == (0.0,) * len(WIDTHS)
    assert readout.slopes[0] is None
    assert all(slope is not None for slope in readout.slopes[1:])
    assert any("mup: readout has no slope at t = 1" in note for note in zeroed.notes)
    # SP never zeroes its readout.
    assert zeroed.parametrization("sp").layer("readout").slopes[0] is not None


def test_coord_check_result_shape(checks):
    plain, _ = checks
    assert plain.widths == WIDTHS
    assert plain.width_dim == "w"
    assert plain.steps == (1, 2, 3, 4)
    assert [dims["w"] for dims in plain.dims] == list(WIDTHS)
    assert all(dims["d_in"] == 32 and dims["n_out"] == 10 for dims in plain.dims)
    assert plain.loss == "cross_entropy"
    assert [p.name for p in plain.parametrizations] == ["sp", "mup"]
    for parametrization in plain.parametrizations:
        roles = [(layer.name, layer.role) for layer in parametrization.layers]
        assert roles == [("fc1", "input"), ("fc2", "hidden"), ("readout", "output")]
        for layer in parametrization.layers:
            assert len(layer.mean) == len(layer.sd) == len(layer.slopes) == 4
            assert all(len(row) == len(WIDTHS) for row in layer.mean)
            assert all(value >= 0.0 for row in layer.sd for value in row)
    assert "fresh batch of 64" in plain.data
    assert plain.cost.runs == 2 * 3 * len(WIDTHS)


def test_sp_and_mup_agree_at_the_base_width(checks):
    """At the base width every µP multiplier is 1: the two parametrizations are
    the same network, trained on the same streams."""
    plain, _ = checks
    sp, mup = plain.parametrization("sp"), plain.parametrization("mup")
    for name in ("fc1", "fc2", "readout"):
        assert [row[0] for row in sp.layer(name).mean] == [
            row[0] for row in mup.layer(name).mean
        ]
        assert sp.layer(name).mean[1][-1] != mup.layer(name).mean[1][-1]


# --- determinism --------------------------------------------------------------------


def test_coord_check_is_deterministic_and_widths_are_independent():
    arguments = {"base_dims": BASE, "steps": 3, "seeds": 2, "batch_size": 16}
    first = coord_check(mlp(), widths=(64, 128), **arguments)
    again = coord_check(mlp(), widths=(64, 128), **arguments)
    wider = coord_check(mlp(), widths=(64, 128, 256), **arguments)

    assert first == again
    for name in ("sp", "mup"):
        for layer, more in zip(
            first.parametrization(name).layers,
            wider.parametrization(name).layers,
            strict=True,
        ):
            assert [row[:2] for row in more.mean] == list(layer.mean)
            assert [row[:2] for row in more.sd] == list(layer.sd)


def test_transfer_check_is_deterministic_and_widths_are_independent():
    arguments = {"lrs": (1e-3, 4e-3), "steps": 5, "seeds": 2, "batch_size": 8}
    first = transfer_check(widths=(32, 64), **arguments)
    again = transfer_check(widths=(32, 64), **arguments)
    wider = transfer_check(widths=(16, 32, 64), **arguments)

    assert first == again
    for name in ("sp", "mup"):
        for width in (32, 64):
            assert (
                first.parametrization(name).curve(width).losses
                == wider.parametrization(name).curve(width).losses
            )


# --- the transfer check's acceptance criteria ----------------------------------------


def test_default_transfer_check_mup_transfers_and_sp_drifts(default_transfer):
    result = default_transfer
    mup, sp = result.parametrization("mup"), result.parametrization("sp")

    assert mup.drift <= 1
    assert sp.drift >= 2
    assert mup.verdict == "transfers"
    assert sp.verdict == "drifts"
    # SP's best learning rate falls as the width grows.
    best = [curve.best_index for curve in sp.curves]
    assert best == sorted(best, reverse=True)
    assert result.verdict.startswith(
        f"Across widths {min(DEFAULT_TRANSFER_WIDTHS)}–{max(DEFAULT_TRANSFER_WIDTHS)}"
    )


def test_default_transfer_check_request(default_transfer):
    result = default_transfer
    assert result.widths == DEFAULT_TRANSFER_WIDTHS
    assert result.optimizer == "adam"
    assert result.log2_lrs == tuple(float(power) for power in range(-14, -3))
    assert result.lrs[0] == 2.0**-14
    assert result.loss_window == result.steps // 10
    assert result.loss == "cross_entropy"
    assert (
        "Final loss: the mean of the last 10 of 100 training losses" in result.notes[0]
    )
    for parametrization in result.parametrizations:
        assert [curve.width for curve in parametrization.curves] == list(result.widths)
        for curve in parametrization.curves:
            assert len(curve.losses) == len(result.lrs)
            finite = [loss for loss in curve.losses if loss is not None]
            assert curve.losses[curve.best_index] == min(finite)
            assert curve.best_lr == result.lrs[curve.best_index]
    # At the base width the two parametrizations are the same network.
    assert (
        result.parametrization("sp").curves[0].losses
        == result.parametrization("mup").curves[0].losses
    )


# --- refusals -----------------------------------------------------------------------


def test_over_budget_is_refused_with_the_changes_that_fit():
    arguments = {"base_dims": BASE, "widths": (64, 128), "steps": 3, "batch_size": 8}
    one_seed = coord_check(mlp(), seeds=1, **arguments).cost.work

    with pytest.raises(LimitExceeded) as caught:
        coord_check(mlp(), seeds=3, budget=one_seed * 1.5, **arguments)

    error = caught.value
    assert error.limit == "compute_budget"
    assert error.limit_value == one_seed * 1.5
    [problem] = error.problems
    assert problem.path == ("seeds",)
    assert "at most 1 seed (you asked for 3)" in problem.message
    assert "over the limit compute_budget" in problem.message
    estimate = float(re.search(r"estimated at (\S+) multiply-add", problem.message)[1])
    assert estimate > one_seed * 1.5
    # The answer quotes the seeds asked for, not the estimate.
    assert problem.value is None

    fitted = coord_check(mlp(), seeds=1, budget=one_seed * 1.5, **arguments)
    assert fitted.cost.work <= one_seed * 1.5


def test_transfer_over_budget_lists_learning_rates_and_widths():
    with pytest.raises(LimitExceeded) as caught:
        transfer_check(budget=4e11)

    [problem] = caught.value.problems
    assert problem.path == ("seeds",)
    assert "at most 1 seed (you asked for 2)" in problem.message
    assert "learning rates (you asked for 11)" in problem.message
    assert "widths up to 128 (drop 512)" in problem.message
    assert "steps (you asked for 100)" in problem.message


def test_unsupported_layers_are_refused():
    gpt = load_spec(json.loads((FIXTURES / "gpt.spec.json").read_text()))
    with pytest.raises(InvalidInput) as caught:
        coord_check(gpt, base_dims={"d_model": 64}, widths=(64, 128))

    [problem] = caught.value.problems
    assert problem.path == ("spec", "layers")
    assert "wte (embedding)" in problem.message
    assert "h.0.attn (attention)" in problem.message


def test_width_errors_name_the_field():
    spec = Spec(
        dims={"d_model": 64, "d_ff": 96},
        layers=(
            LinearSpec(name="inp", in_features=8, out_features="d_model"),
            LinearSpec(name="up", in_features="d_model", out_features="d_ff"),
            LinearSpec(name="down", in_features="d_ff", out_features="d_model"),
            LinearSpec(name="out", in_features="d_model", out_features=4),
        ),
    )
    base = {"d_model": 64, "d_ff": 96}
    with pytest.raises(InvalidInput) as caught:
        coord_check(spec, base_dims=base, widths=(64, 65))
    [problem] = caught.value.problems
    assert problem.path == ("widths", 1)
    assert "d_ff would be 96·65/64 = 97.5, not an integer" in problem.message
    assert "(multiples of 2)" in problem.message

    with pytest.raises(InvalidInput) as caught:
        coord_check(spec, base_dims={"d_modle": 64}, widths=(64, 128))
    assert caught.value.problems[0].path == ("base_dims", "d_modle")

    plain = Spec(
        dims={"a": 16, "b": 32},
        layers=(
            LinearSpec(name="inp", in_features=8, out_features="a"),
            LinearSpec(name="mid", in_features="a", out_features="b"),
            LinearSpec(name="out", in_features="b", out_features=4),
        ),
    )
    with pytest.raises(InvalidInput) as caught:
        coord_check(plain, base_dims={"a": 16, "b": 32}, widths=(16, 32))
    assert caught.value.problems[0].path == ("width_dim",)

    with pytest.raises(InvalidInput) as caught:
        coord_check(mlp(), base_dims=BASE, widths=(64,))
    assert caught.value.problems[0].path == ("widths",)

    with pytest.raises(InvalidInput) as caught:
        coord_check(
            mlp(), base_dims={"w": 64, "n_out": 10}, widths=(64, 128), width_dim="w"
        )
    assert "output size changes" in caught.value.problems[0].message


def test_bad_arguments_are_refused_together():
    with pytest.raises(InvalidInput) as caught:
        coord_check(
            mlp(),
            base_dims=BASE,
            widths=(64, 128),
            optimizer="lion",  # type: ignore[arg-type]
            lr=-1.0,
            steps=1,
            seeds=0,
            parametrizations=("sp", "sp"),
        )
    paths = [problem.path for problem in caught.value.problems]
    assert paths == [
        ("optimizer",),
        ("lr",),
        ("steps",),
        ("seeds",),
        ("parametrizations",),
    ]

    with pytest.raises(InvalidInput, match="increasing order"):
        transfer_check(lrs=(1e-2, 1e-3))
    with pytest.raises(InvalidInput, match="cross_entropy needs two or more outputs"):
        coord_check(
            Spec(
                dims={"w": 8},
                layers=(
                    LinearSpec(name="a", in_features=2, out_features="w"),
                    LinearSpec(name="b", in_features="w", out_features=1),
                ),
            ),
            base_dims={"w": 8},
            widths=(8, 16),
            loss="cross_entropy",
        )


# --- other networks and losses --------------------------------------------------------


def test_residual_network_records_its_groups():
    relu = Activation("relu")
    spec = Spec(
        dims={"d_model": 32, "d_ff": 64},
        layers=(
            LinearSpec(name="inp", in_features=16, out_features="d_model"),
            RepeatGroup(
                name="h",
                count=2,
                layers=(
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(kind="rms_norm", name="ln"),
                        layers=(
                            LinearSpec(
                                name="fc",
                                in_features="d_model",
                                out_features="d_ff",
                                activation=relu,
                            ),
                            LinearSpec(
                                name="proj", in_features="d_ff", out_features="d_model"
                            ),
                        ),
                    ),
                ),
            ),
            LinearSpec(name="out", in_features="d_model", out_features=5),
        ),
    )
    result = coord_check(
        spec,
        base_dims={"d_model": 32, "d_ff": 64},
        widths=(32, 64, 128),
        steps=3,
        seeds=2,
        batch_size=16,
    )

    assert result.width_dim == "d_model"
    assert [dims["d_ff"] for dims in result.dims] == [64, 128, 256]
    mup = result.parametrization("mup")
    roles = [(layer.name, layer.kind, layer.role) for layer in mup.layers]
    assert roles == [
        ("inp", "linear", "input"),
        ("h.0.fc", "linear", "hidden"),
        ("h.0.proj", "linear", "hidden"),
        ("h.0", "residual", "hidden"),
        ("h.1.fc", "linear", "hidden"),
        ("h.1.proj", "linear", "hidden"),
        ("h.1", "residual", "hidden"),
        ("out", "linear", "output"),
    ]
    assert all(slope is not None for layer in mup.layers for slope in layer.slopes)


def test_mse_against_the_teacher():
    result = coord_check(
        mlp(), base_dims=BASE, widths=(64, 128), steps=2, seeds=1, loss="mse"
    )
    assert result.loss == "mse"
    assert "targets xT, loss mse" in result.data
    assert result.parametrization("mup").layer("fc2").verdict == "flat"


def test_memory_over_budget_is_refused():
    with pytest.raises(LimitExceeded) as caught:
        coord_check(mlp(), base_dims=BASE, widths=(64, 128, 8192), memory_budget=1e7)

    error = caught.value
    assert error.limit == "memory_budget"
    assert error.limit_value == 1e7
    [problem] = error.problems
    assert problem.path == ("widths",)
    assert "widths up to 128 (drop 8192)" in problem.message
    assert "over the limit memory_budget = 1e+07" in problem.message


def test_a_bad_init_scheme_points_at_init_scheme():
    with pytest.raises(InvalidInput) as caught:
        coord_check(
            mlp(),
            base_dims=BASE,
            widths=(64, 128),
            init_scheme=SchemeChoice("kaiming_normall"),
        )
    assert caught.value.problems[0].path == ("init_scheme", "name")


def test_truncated_normal_scheme_keeps_the_mup_readout_scaling():
    """Keras' truncated normal (cut at ±2 sampler stds) drawn at every width:
    the µP readout at init still scales as 1/√width, hidden layers stay flat."""
    result = coord_check(
        mlp(),
        base_dims=BASE,
        widths=(64, 256, 1024),
        steps=3,
        seeds=2,
        init_scheme=SchemeChoice(
            "variance_scaling",
            {"scale": 2.0, "distribution": "truncated_normal"},
        ),
    )
    assert result.init_scheme.options["distribution"] == "truncated_normal"
    mup = result.parametrization("mup")
    assert mup.layer("readout").slopes[0] == pytest.approx(-0.5, abs=0.1)
    assert mup.layer("fc2").verdict == "flat"


def test_without_base_dims_the_spec_is_the_base_and_its_only_dim_the_width():
    spec = Spec(
        dims={"w": 32},
        layers=(
            LinearSpec(name="a", in_features=4, out_features="w"),
            LinearSpec(name="b", in_features="w", out_features=3),
        ),
    )
    result = coord_check(spec, base_dims={}, widths=(32, 64), steps=2, seeds=1)
    assert result.width_dim == "w"
    assert [dims["w"] for dims in result.dims] == [32, 64]
    # At w = 32, the spec's own size, µP changes nothing.
    sp, mup = result.parametrization("sp"), result.parametrization("mup")
    assert sp.layer("b").mean[1][0] == mup.layer("b").mean[1][0]


# --- Verdicts on uneven grids, the grid's edge, divergence ---------------------------


def _small_transfer(**changes):
    arguments = dict(
        widths=(32, 64),
        lrs=(1e-3, 1e-2, 1e-1),
        steps=8,
        seeds=1,
        batch_size=8,
    )
    return transfer_check(**(arguments | changes))


def test_a_drift_is_judged_in_log2_against_the_grid_spacing():
    # Grid 2^-12, 2^-11, 2^-10 and then 2^-4: a move from the third to the
    # fourth point is one position but 6 in log2, six times the median spacing.
    result = _small_transfer(lrs=(2**-12, 2**-11, 2**-10, 2**-4, 2**-3))
    for entry in result.parametrizations:
        logs = [math.log2(curve.best_lr) for curve in entry.curves]
        drift_log2 = max(logs) - min(logs)
        assert entry.drift_log2 == pytest.approx(drift_log2)
        edge = any(curve.best_index in (0, 4) for curve in entry.curves)
        if edge:
            assert entry.verdict == "undetermined"
        else:
            assert entry.verdict == ("transfers" if drift_log2 <= 1 else "drifts")


def test_a_best_rate_at_the_edge_of_the_grid_is_undetermined():
    # A grid of tiny rates: the runs are best at an end of the grid.
    result = _small_transfer(lrs=(1e-7, 2e-7, 4e-7))

    for entry in result.parametrizations:
        assert any(curve.best_index in (0, 2) for curve in entry.curves)
        assert entry.verdict == "undetermined"
        assert "edge of the grid" in entry.summary


def test_a_run_whose_loss_explodes_is_diverged_and_never_best():
    result = _small_transfer(lrs=(1e-3, 1e4), optimizer="sgd")

    for entry in result.parametrizations:
        for curve in entry.curves:
            assert curve.losses[1] is None
            assert curve.best_index == 0


def test_a_transfer_check_needs_two_steps():
    with pytest.raises(InvalidInput) as caught:
        _small_transfer(steps=1)

    assert caught.value.problems[0].path == ("steps",)
