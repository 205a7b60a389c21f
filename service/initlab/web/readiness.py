"""Readiness: the worker computes known answers right and its settings hold.

``/readyz`` answers 200 when a self-check passes: a few recommendations for one
784 → 256 ReLU layer are computed through the real core (spec expansion,
scheme resolution, :func:`initlab.core.recommend.recommend`) and compared with
their closed forms to :data:`RELATIVE_TOLERANCE`, and the configuration is
usable (:meth:`initlab.web.config.Config.faults`). A worker whose numerical
libraries were miscompiled, mis-linked or are missing fails here, before a load
balancer sends it traffic. The check runs once per worker process, on its first
``/readyz`` (after gunicorn's fork, so each worker checks its own state), and
its result is kept. ``/healthz`` stays the cheap liveness probe.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from marshmallow import Schema, fields, validate

from initlab.core.recommend import recommend
from initlab.core.spec import LinearSpec, Spec, expand
from initlab.core.types import Activation, SchemeChoice
from initlab.web.config import Config
from initlab.web.problems import Problem, ProblemKind

RELATIVE_TOLERANCE = 1e-12
FAN_IN = 784
FAN_OUT = 256

error_log = logging.getLogger("initlab.web")

NOT_READY = ProblemKind(
    "not-ready",
    503,
    "Not ready",
    "The worker's self-check failed (`checks` lists each check and its"
    " outcome): it should get no traffic. Liveness (/healthz) is unaffected.",
)


@dataclass(frozen=True)
class Check:
    """One part of the self-check and its outcome."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class _ClosedForm:
    """A recommendation the core must give: ``scheme``'s ``quantity`` of the
    weight equals ``expected``, the formula of ``source``."""

    name: str
    scheme: str
    quantity: str
    expected: float
    formula: str


CLOSED_FORMS = (
    # He et al. 2015, "Delving Deep into Rectifiers", eq. 10: Var = 2 / fan_in.
    _ClosedForm(
        "kaiming_normal_relu",
        "kaiming_normal",
        "std",
        math.sqrt(2 / FAN_IN),
        "√(2/784)",
    ),
    # Glorot & Bengio 2010, eq. 16: U(±√(6 / (fan_in + fan_out))).
    _ClosedForm(
        "xavier_uniform",
        "xavier_uniform",
        "bound",
        math.sqrt(6 / (FAN_IN + FAN_OUT)),
        "√(6/(784+256))",
    ),
    # LeCun et al. 1998, "Efficient BackProp", §4.6: Var = 1 / fan_in.
    _ClosedForm(
        "lecun_normal", "lecun_normal", "std", math.sqrt(1 / FAN_IN), "√(1/784)"
    ),
)


class ReadinessCheckSchema(Schema):
    """One check of GET /readyz."""

    name = fields.String(
        required=True,
        metadata={
            "description": "What was checked: a scheme whose recommendation is"
            " compared with its closed form, or `config`.",
            "example": "kaiming_normal_relu",
        },
    )
    passed = fields.Boolean(
        required=True, metadata={"description": "Whether the check passed."}
    )
    detail = fields.String(
        required=True,
        metadata={"description": "The value found and the one expected, or why not."},
    )


class ReadinessSchema(Schema):
    """Response of GET /readyz."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(["ready"]),
        metadata={"description": "`ready`: every check passed."},
    )
    checks = fields.List(
        fields.Nested(ReadinessCheckSchema),
        required=True,
        metadata={"description": "Every check of the self-check, in order."},
    )


class Readiness:
    """The self-check of the current process, run once and kept."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._checks: list[Check] | None = None
        self._pid: int | None = None

    def checks(self) -> list[Check]:
        """The outcome of every check, computed on the first call in a process."""
        if self._checks is None or self._pid != os.getpid():
            self._checks = run_checks(self.config)
            self._pid = os.getpid()
            for check in self._checks:
                if not check.passed:
                    error_log.error(
                        "self-check %s failed: %s", check.name, check.detail
                    )

        return self._checks

    def answer(self) -> dict:
        """The body of a 200, or raises the 503 :class:`Problem` naming the failures."""
        checks = self.checks()
        failed = [check for check in checks if not check.passed]
        as_dicts = [check.__dict__.copy() for check in checks]
        if failed:
            names = ", ".join(check.name for check in failed)
            raise Problem(
                NOT_READY,
                f"The self-check failed ({names}): {failed[0].detail} This worker"
                " should get no traffic; see the server log and the checks.",
                checks=as_dicts,
            )

        return {"status": "ready", "checks": as_dicts}


def run_checks(config: Config) -> list[Check]:
    """The closed-form checks of the core, then the configuration's."""
    checks = [
        _guarded(form.name, lambda form=form: _check_closed_form(form))
        for form in CLOSED_FORMS
    ]
    checks.append(_guarded("config", lambda: _check_config(config)))
    return checks


def _check_closed_form(form: _ClosedForm) -> Check:
    layer = LinearSpec(
        in_features=FAN_IN,
        out_features=FAN_OUT,
        name="fc",
        activation=Activation("relu"),
    )
    expanded = expand(Spec(dims={}, layers=(layer,)))
    result = recommend(expanded, SchemeChoice(form.scheme))
    weight = next(row for row in result.parameters if row.name == "fc.weight")
    found = getattr(weight, form.quantity)

    error = math.inf if found is None else abs(found - form.expected) / form.expected
    passed = error <= RELATIVE_TOLERANCE
    verdict = "equals" if passed else "differs from"
    detail = (
        f"{form.scheme} {form.quantity} for fan_in {FAN_IN}, fan_out {FAN_OUT}:"
        f" {found!r} {verdict} {form.formula} = {form.expected!r} (relative"
        f" error {error:.3g}, allowed {RELATIVE_TOLERANCE:g})."
    )
    return Check(form.name, passed, detail)


def _check_config(config: Config) -> Check:
    faults = config.faults()
    if faults:
        return Check(
            "config", False, "The configuration is unusable: " + " ".join(faults)
        )

    return Check("config", True, "Every setting is usable.")


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run ``check``; an exception fails it, naming the exception."""
    try:
        return check()
    except Exception as error:  # any failure of the core makes the worker unready
        return Check(name, False, f"The check raised {type(error).__name__}: {error}.")
