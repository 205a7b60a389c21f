"""Depth scales at the edge of chaos: infinite, never a huge negative number."""

from __future__ import annotations

import math

import numpy as np

from initlab.core.activations import make_activation
from initlab.core.meanfield import depth_scale, fixed_point


def test_chi_one_ulp_above_one_is_critical_not_a_negative_depth_scale():
    assert depth_scale(1.0 + 2.0**-52) is None
    assert depth_scale(1.0 - 2.0**-53) is None


def test_depth_scale_away_from_the_edge_is_minus_one_over_log_chi():
    assert depth_scale(0.5) == -1.0 / math.log(0.5)
    assert depth_scale(1.5) == -1.0 / math.log(1.5)
    assert depth_scale(0.0) == 0.0


def test_he_relu_stack_rebuilt_from_std_and_fan_in_has_no_finite_gradient_scale():
    std = math.sqrt(2.0) / math.sqrt(256.0)
    sigma_w2 = float(np.float64(std) ** 2 * 256)  # 2.0000000000000004
    point = fixed_point(make_activation("relu"), sigma_w2, 0.0)

    assert point.phase == "critical"
    assert point.xi_grad is None
