"""The HTTP client of the initlab service.

One :class:`Client` holds one ``requests.Session`` (connection reuse) and
turns each endpoint into a method returning typed results. Every failure
leaves as an :mod:`initlab_client.errors` exception; ``requests``' own
exceptions are translated in exactly one place, :meth:`Client._send`.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import numbers
import operator
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from ._json import NotJSON, json_ready
from ._version import __version__
from .checks import CoordCheck, TransferCheck
from .errors import (
    APIError,
    ConnectionDropped,
    ConnectionError,
    ConnectTimeout,
    InitlabError,
    InvalidRequest,
    InvalidResponse,
    LimitExceeded,
    ServiceBusy,
    Timeout,
    TooManyRequests,
    api_error_class,
    field_errors,
)
from .imports import ImportedSpec, Preset
from .models import (
    ActivationInfo,
    Recommendations,
    SchemeInfo,
    list_member,
)
from .mup import MupTable
from .spec import ConfigSource, json_integers, read_config
from .statistics import PhaseDiagram, PropagationChart, Statistics

BASE_URL_ENV = "INITLAB_URL"
API_KEY_ENV = "INITLAB_API_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# Three retries with waits of 0, 1 and 2 s: a service restarting behind a
# load balancer is back within that, and a stopped one is reported in 3 s.
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
# The longest wait a Retry-After may ask for; longer ones are cut to it, so a
# misconfigured proxy cannot hold a script for hours (urllib3 allows 6 h).
MAX_RETRY_AFTER = 60
# The answers worth asking again: too many requests, and a gateway or service
# that is restarting or overloaded. A 500 is a bug and would fail again.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# (connect, read) in seconds. The connect value sits just above a multiple of
# 3 s, TCP's initial retransmission window; the read value matches the
# service's own worker timeout.
DEFAULT_TIMEOUT = (3.05, 60)
# The least read timeout of the two µP checks, which train networks before
# they answer: the default transfer check takes 15 to 30 s on one core, and a
# check near the service's training budget about 35 s, more on a busy server.
TRAINING_READ_TIMEOUT = 120.0

Result = TypeVar("Result")

if TYPE_CHECKING:
    # Kept out of run time so that the client still imports on Python 3.9.
    TimeoutValue = float | tuple[float, float] | None


def user_agent() -> str:
    """``initlab-client/<version> requests/<version> python/<version>``."""
    return (
        f"initlab-client/{__version__} requests/{requests.__version__}"
        f" python/{platform.python_version()}"
    )


class Client:
    """A client of one initlab service.

    ``base_url`` is taken from the argument, else the ``INITLAB_URL``
    environment variable, else ``http://127.0.0.1:8000``; it may carry a path
    prefix (``https://example.org/initlab``). ``timeout`` is handed to
    ``requests``: seconds, or a ``(connect, read)`` pair.

    ``retries`` is how many times a request is sent again after a connection
    failure or a 429, 502, 503 or 504 answer. Every endpoint is a pure
    computation of its request, so sending a POST again is safe. The waits
    between attempts follow ``Retry-After`` when the service sends one (at
    most :data:`MAX_RETRY_AFTER` seconds), else an exponential backoff: none
    before the first retry, then ``2 * backoff``, ``4 * backoff``, ... A
    connection dropped after the request was sent (a worker restarted) is a
    connection failure, retried; a request the service received and did not
    answer within the read timeout is not sent again (it may still be
    computing): it raises :class:`Timeout`.

    ``api_key``, else the ``INITLAB_API_KEY`` environment variable, is sent
    as ``Authorization: Bearer <key>`` to a service that requires one.

    A ``session`` passed in is used as is (its adapters decide retries) and
    left open by :meth:`close`; otherwise the client makes its own and closes
    it. Use the client as a context manager to close it. Like
    ``requests.Session``, one client is meant for one thread.
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: TimeoutValue = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        api_key: str | None = None,
        session: requests.Session | None = None,
        backoff: float = DEFAULT_BACKOFF,
    ):
        self.base_url = _checked_base_url(base_url)
        self.timeout = _checked_timeout(timeout)
        self.retry = retry_policy(retries, backoff)
        self.user_agent = user_agent()
        self._api_key = _checked_api_key(api_key)
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(max_retries=self.retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session, unless it was handed in by the caller."""
        if self._owns_session:
            self.session.close()

    def recommend(
        self,
        spec: Mapping[str, Any],
        scheme: str | Mapping[str, Any] = "auto",
        overrides: Mapping[str, str | Mapping[str, Any]] | None = None,
    ) -> Recommendations:
        """Per-parameter initialization of ``spec`` under ``scheme``.

        ``spec`` is the architecture as a mapping (see :func:`load_spec` to
        read one from a file); ``scheme`` a name or ``{"name": ..., option:
        value}``; ``overrides`` is a mapping of globs over parameter or layer
        names to schemes, applied in order (the later match wins). Raises
        :class:`TypeError` before sending for ``overrides`` of another type,
        and :class:`ValidationError` when the spec breaks a rule, with a JSON
        pointer to each field at fault.
        """
        _check_spec(spec)
        body: dict[str, Any] = {"spec": dict(spec), "scheme": scheme}
        if overrides is not None:
            body["overrides"] = _overrides(overrides)

        return self._call(
            "POST", "/v1/recommendations", Recommendations.from_json, json=body
        )

    def statistics(
        self,
        spec: Mapping[str, Any],
        init: str | Mapping[str, Any] = "auto",
        overrides: Mapping[str, str | Mapping[str, Any]] | None = None,
        method: str = "both",
        batch_size: int | None = None,
        seeds: int | None = None,
        seed: int = 0,
        input_second_moment: float = 1.0,
        input_correlation: float | None = None,
        *,
        backward: bool | None = None,
        spatial_size: int | None = None,
        sequence_length: int | None = None,
    ) -> Statistics:
        """How the signal and the gradient move through ``spec`` drawn with ``init``.

        ``init`` is a scheme as in :meth:`recommend` (with ``overrides``);
        ``method`` is ``"analytic"`` (the infinite-width prediction),
        ``"monte_carlo"`` (``seeds`` networks drawn and run on ``batch_size``
        inputs) or ``"both"``. ``input_correlation`` follows a pair of inputs
        at that correlation. Arguments left at ``None`` take the service's
        defaults (batch 64, 8 seeds, backward pass on). The same arguments
        give the same numbers, bit for bit. Raises :class:`LimitExceeded` when
        the work is over the service's budget, with the ``estimate``.
        """
        _check_spec(spec)
        body: dict[str, Any] = {
            "spec": dict(spec),
            "init": init,
            "method": method,
            "seed": seed,
            "input": {"second_moment": input_second_moment},
        }
        if input_correlation is not None:
            body["input"]["correlation"] = input_correlation
        if overrides is not None:
            body["overrides"] = _overrides(overrides)
        optional = {
            "batch_size": batch_size,
            "seeds": seeds,
            "backward": backward,
            "spatial_size": spatial_size,
            "sequence_length": sequence_length,
        }
        body.update(
            {key: value for key, value in optional.items() if value is not None}
        )

        return self._call("POST", "/v1/statistics", Statistics.from_json, json=body)

    def mup_table(
        self,
        spec: Mapping[str, Any],
        *,
        targets: Sequence[Mapping[str, Any]],
        lr: float,
        base_dims: Mapping[str, Any] | None = None,
        optimizer: str = "adamw",
        weight_decay: float | None = None,
        eps: float | None = None,
        init_std: float | None = None,
        init_scheme: str | Mapping[str, Any] | None = None,
        readout_zero_init: bool | None = None,
        query_zero_init: bool | None = None,
        output_multiplier: float | None = None,
        input_multiplier: float | None = None,
        attention_multiplier: float | None = None,
        form: str | None = None,
        weight_decay_convention: str | None = None,
        depth: str | Mapping[str, Any] | None = None,
        width_dims: Sequence[str] | None = None,
        width_dim: str | None = None,
    ) -> MupTable:
        """How the base model's tuned settings carry over to wider or deeper targets.

        ``spec`` is the architecture as in :meth:`recommend`; ``base_dims``
        overrides its dims to describe the tuned base (proxy) model, and each
        of ``targets`` (at most 64) overrides the spec's own dims (``{}`` is
        the spec as written). ``lr`` is the base's tuned learning rate under
        ``optimizer`` (``"adamw"``, ``"adam"`` or ``"sgd"``). ``form`` is
        ``"mup_package"`` (Yang et al. 2022, Tensor Programs V, Table 8, as
        the microsoft/mup package implements it), ``"table3"`` or
        ``"practitioner"``; ``depth`` is a rule name, ``"completep"`` or
        ``"depth_mup"``, or a mapping such as ``{"rule": "completep",
        "alpha": 0.5}``, for targets of another depth. Give ``init_std`` or
        ``init_scheme``, not both. Arguments left at ``None`` are not sent, so
        the service's defaults apply (weight decay 0, ε 1e-8, init std 0.02,
        a zero-initialized readout, multipliers 1.0); the answer echoes every
        choice.

        Dim sizes may be any integer type (numpy's included; they are sent as
        JSON integers). Raises :class:`TypeError` before sending for a
        ``targets`` or ``width_dims`` that is not a list, a dim size that is a
        float or a bool, or a ``depth`` of another type; :class:`ValueError`
        for a NaN or infinite ``lr``, ``weight_decay``, ``eps``, ``init_std``
        or multiplier, which JSON cannot carry; :class:`ValidationError`, with
        a pointer to each field at fault, for what the service refuses.
        """
        _check_spec(spec)
        if isinstance(targets, (str, Mapping)):
            raise TypeError(
                "targets must be a list of dim overrides, one per target model,"
                f" such as [{{'d_model': 1024}}]; got {type(targets).__name__}"
            )
        if isinstance(width_dims, str):
            raise TypeError(
                "width_dims must be a list of dim names, such as"
                f' ["d_model", "d_ff"]; got the string {width_dims!r}'
            )
        body: dict[str, Any] = {
            "spec": dict(spec),
            "targets": [
                _dim_sizes(target, f"targets[{index}]")
                for index, target in enumerate(targets)
            ],
            "optimizer": optimizer,
            "lr": _finite_number("lr", lr),
        }
        optional = {
            "base_dims": _dim_sizes(base_dims, "base_dims"),
            "weight_decay": _finite_number("weight_decay", weight_decay),
            "eps": _finite_number("eps", eps),
            "init_std": _finite_number("init_std", init_std),
            "init_scheme": init_scheme,
            "readout_zero_init": readout_zero_init,
            "query_zero_init": query_zero_init,
            "output_multiplier": _finite_number("output_multiplier", output_multiplier),
            "input_multiplier": _finite_number("input_multiplier", input_multiplier),
            "attention_multiplier": _finite_number(
                "attention_multiplier", attention_multiplier
            ),
            "form": form,
            "weight_decay_convention": weight_decay_convention,
            "depth": _depth_rule(depth),
            "width_dims": None if width_dims is None else list(width_dims),
            "width_dim": width_dim,
        }
        body.update(
            {key: value for key, value in optional.items() if value is not None}
        )

        return self._call("POST", "/v1/mup/table", MupTable.from_json, json=body)

    def coord_check(
        self,
        spec: Mapping[str, Any],
        *,
        widths: Iterable[int],
        base_dims: Mapping[str, Any] | None = None,
        width_dim: str | None = None,
        optimizer: str | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        steps: int | None = None,
        batch_size: int | None = None,
        seeds: int | None = None,
        seed: int | None = None,
        parametrizations: Sequence[str] | None = None,
        readout_zero_init: bool | None = None,
        init_scheme: str | Mapping[str, Any] | None = None,
        loss: str | None = None,
    ) -> CoordCheck:
        """Train ``spec`` briefly at each width and follow every layer's output size.

        The coordinate check of Tensor Programs V (Yang et al. 2022, §7): the
        service trains ``spec`` with ``width_dim`` set to each of ``widths``
        (2 to 16; every other dim of ``base_dims`` scales in proportion) for
        ``steps`` forward passes, under ``"sp"`` and ``"mup"`` (or the
        ``parametrizations`` named), and answers the mean |x| of each layer's
        output per step and width, its slope against width and a verdict:
        under µP a hidden layer stays ``flat``. ``lr`` is the base model's
        learning rate under ``optimizer`` (``"sgd"``, ``"adam"`` or
        ``"adamw"``). Arguments left at ``None`` are not sent, so the
        service's defaults apply (Adam, lr 0.01, 4 steps, the spec's own dims
        as the base); the answer echoes every choice.

        Widths, dim sizes and counts may be numpy integers (they are sent as
        JSON integers). The read timeout is at least
        :data:`TRAINING_READ_TIMEOUT` seconds. Raises :class:`TypeError`
        before sending for ``widths`` or ``parametrizations`` given as one
        string, or a width or dim size that is a float or a bool;
        :class:`ValueError` for a NaN or infinite ``lr`` or ``weight_decay``;
        :class:`ValidationError` pointing at each field the service refuses
        (``/widths``) and :class:`LimitExceeded` for training over its budget.
        """
        _check_spec(spec)
        body: dict[str, Any] = {
            "spec": dict(spec),
            "widths": _widths(widths),
            **_check_options(
                base_dims=base_dims,
                width_dim=width_dim,
                optimizer=optimizer,
                lr=lr,
                weight_decay=weight_decay,
                steps=steps,
                batch_size=batch_size,
                seeds=seeds,
                seed=seed,
                parametrizations=parametrizations,
                readout_zero_init=readout_zero_init,
                init_scheme=init_scheme,
                loss=loss,
            ),
        }

        return self._call(
            "POST",
            "/v1/mup/coord-check",
            CoordCheck.from_json,
            json=body,
            timeout=_training_timeout(self.timeout),
        )

    def transfer_check(
        self,
        spec: Mapping[str, Any] | None = None,
        *,
        widths: Iterable[int] | None = None,
        lrs: Iterable[float] | None = None,
        base_dims: Mapping[str, Any] | None = None,
        width_dim: str | None = None,
        optimizer: str | None = None,
        weight_decay: float | None = None,
        steps: int | None = None,
        loss_window: int | None = None,
        batch_size: int | None = None,
        seeds: int | None = None,
        seed: int | None = None,
        parametrizations: Sequence[str] | None = None,
        readout_zero_init: bool | None = None,
        init_scheme: str | Mapping[str, Any] | None = None,
        loss: str | None = None,
    ) -> TransferCheck:
        """Sweep the learning rate at each width: does the best one stay put?

        The transfer check of Tensor Programs V (Yang et al. 2022, Figure 1):
        the service trains ``spec`` at each of ``widths`` for every base
        learning rate of ``lrs``, under ``"sp"`` and ``"mup"``, and answers
        the final training loss of each run (the mean of the last
        ``loss_window`` losses of ``steps`` updates), the best learning rate
        per width and how many grid steps it moves: under µP it should stay
        within one. Every argument has a default: ``transfer_check()`` trains
        the MLP 32 → w → w → 10 at widths 32, 128 and 512 with Adam over
        2⁻¹⁴ … 2⁻⁴ for 100 steps, which takes 15 to 30 s. The other arguments
        are those of :meth:`coord_check`.

        The read timeout is at least :data:`TRAINING_READ_TIMEOUT` seconds.
        Raises :class:`TypeError` before sending for ``widths``, ``lrs`` or
        ``parametrizations`` given as one string, or a width or dim size that
        is a float or a bool; :class:`ValueError` for a NaN or infinite
        learning rate or ``weight_decay``; :class:`ValidationError` and
        :class:`LimitExceeded` for what the service refuses.
        """
        body: dict[str, Any] = {}
        if spec is not None:
            _check_spec(spec)
            body["spec"] = dict(spec)
        if widths is not None:
            body["widths"] = _widths(widths)
        if lrs is not None:
            body["lrs"] = _learning_rates(lrs)
        body.update(
            _check_options(
                base_dims=base_dims,
                width_dim=width_dim,
                optimizer=optimizer,
                weight_decay=weight_decay,
                steps=steps,
                loss_window=loss_window,
                batch_size=batch_size,
                seeds=seeds,
                seed=seed,
                parametrizations=parametrizations,
                readout_zero_init=readout_zero_init,
                init_scheme=init_scheme,
                loss=loss,
            )
        )

        return self._call(
            "POST",
            "/v1/mup/transfer-check",
            TransferCheck.from_json,
            json=body,
            timeout=_training_timeout(self.timeout),
        )

    def import_spec(
        self,
        *,
        config: ConfigSource | None = None,
        arch: str | None = None,
        head: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | None = None,  # The contract's name.
    ) -> ImportedSpec:
        """The spec of a real model, with its parameter count and the dims to scale.

        Give ``config``, a Hugging Face ``config.json`` as a mapping or a path
        (model types gpt2, llama, mistral, bert, t5, vit; ``head`` picks the
        head, ``"default"`` when not sent), or ``arch``, a torchvision ResNet
        such as ``"resnet50"`` with its constructor's ``options``. ``format``
        (``"huggingface"`` or ``"torchvision"``) follows from which one is
        given. The answer's ``spec`` can be posted to any endpoint; to skip
        this round trip, pass :meth:`Spec.from_hf_config
        <initlab_client.Spec.from_hf_config>` or :meth:`Spec.from_torchvision
        <initlab_client.Spec.from_torchvision>` as the spec instead.

        Raises :class:`TypeError` before sending when neither or both of
        ``config`` and ``arch`` are given without a ``format``,
        ``FileNotFoundError`` for a config path that does not exist,
        :class:`SpecFileError` for a file that is not a JSON object, and
        :class:`ValidationError` for what the service refuses, pointing into
        the body (``/config/model_type``, ``/options/groups``).
        """
        if format is None:
            format = _import_format(config, arch)
        body: dict[str, Any] = {"format": format}
        optional = {
            "config": None if config is None else read_config(config),
            "arch": arch,
            "head": head,
            "options": None if options is None else json_integers(options),
        }
        body.update(
            {key: value for key, value in optional.items() if value is not None}
        )

        return self._call("POST", "/v1/specs/import", ImportedSpec.from_json, json=body)

    def expand_preset(self, name: str, /, **params: Any) -> ImportedSpec:
        """The spec the preset ``name`` builds from ``params``.

        ``name`` is ``"mlp"``, ``"resnet"`` or ``"transformer"``; parameters
        left out take their defaults (:meth:`presets` lists them). Integer
        values may be numpy's (they are sent as JSON integers). Raises
        :class:`ValidationError` pointing at each parameter the service
        refuses (``/d_model``), or at ``/preset`` for an unknown name.
        """
        body = {"preset": name, **json_integers(params)}

        return self._call("POST", "/v1/specs/expand", ImportedSpec.from_json, json=body)

    def propagation(
        self,
        activation: str = "relu",
        schemes: str | Sequence[str] = ("kaiming_normal", "xavier_normal"),
        depth: int | None = None,
        width: int | None = None,
        sigma_b2: float | None = None,
        method: str | None = None,
        batch_size: int | None = None,
        seeds: int | None = None,
        seed: int | None = None,
        input_second_moment: float | None = None,
        **activation_params: float,
    ) -> PropagationChart:
        """Chart data: second moments layer by layer of an MLP under each scheme.

        ``schemes`` are scheme names (a list, or one string with commas);
        keyword arguments such as ``negative_slope=0.2`` set the activation's
        parameters. Arguments left at ``None`` take the service's defaults
        (depth 20, width 256, σ_b² 0, both methods).
        """
        if not isinstance(schemes, str):
            schemes = ",".join(schemes)
        query = _query(
            activation=activation,
            schemes=schemes,
            depth=depth,
            width=width,
            sigma_b2=sigma_b2,
            method=method,
            batch_size=batch_size,
            seeds=seeds,
            seed=seed,
            input_second_moment=input_second_moment,
            **activation_params,
        )

        return self._call(
            "GET",
            "/v1/visualizations/propagation",
            PropagationChart.from_json,
            params=query,
        )

    def phase_diagram(
        self,
        activation: str = "tanh",
        sigma_w2: tuple[float, float, int] | None = None,
        sigma_b2: tuple[float, float, int] | None = None,
        q_input: float | None = None,
        **activation_params: float,
    ) -> PhaseDiagram:
        """Chart data: χ₁, q*, c*, ξ_c on a (σ_w², σ_b²) grid and the edge of chaos.

        ``sigma_w2`` and ``sigma_b2`` are ``(minimum, maximum, steps)``;
        ``None`` takes the service's grid (σ_w² from 0.25 to 4, σ_b² from 0 to
        0.5, 41 steps each).
        """
        grids: dict[str, Any] = {}
        for axis, grid in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
            if grid is not None:
                minimum, maximum, steps = grid
                grids.update(
                    {
                        f"{axis}_min": minimum,
                        f"{axis}_max": maximum,
                        f"{axis}_steps": steps,
                    }
                )
        query = _query(
            activation=activation, **grids, q_input=q_input, **activation_params
        )

        return self._call(
            "GET",
            "/v1/visualizations/phase-diagram",
            PhaseDiagram.from_json,
            params=query,
        )

    def activations(
        self, name: str | None = None, **params: float
    ) -> list[ActivationInfo]:
        """Gains and Gaussian moments of every activation, or of ``name`` alone.

        Keyword arguments set the activation's parameters, as in
        ``activations("leaky_relu", negative_slope=0.2)``.
        """
        query: dict[str, Any] = {} if name is None else {"name": name}
        query.update(params)

        return self._call(
            "GET",
            "/v1/activations",
            lambda data: list_member(ActivationInfo, data, "activations"),
            params=query,
        )

    def schemes(self) -> list[SchemeInfo]:
        """Every initialization scheme the service offers, with options and sources."""
        return self._call(
            "GET",
            "/v1/schemes",
            lambda data: list_member(SchemeInfo, data, "schemes"),
        )

    def presets(self) -> list[Preset]:
        """Every preset the service builds, with its parameters' types and defaults."""
        return self._call(
            "GET", "/v1/presets", lambda data: list_member(Preset, data, "presets")
        )

    def health(self) -> dict[str, Any]:
        """The service's ``/healthz`` answer; raises when it is down or unhealthy."""
        return self._call("GET", "/healthz", _json_object)

    def _call(
        self,
        method: str,
        path: str,
        build: Callable[[Any], Result],
        **kwargs: Any,
    ) -> Result:
        """Send a request and build the result from its JSON body."""
        response = self._send(method, path, **kwargs)
        try:
            return build(_json_body(response))
        except InvalidResponse as error:
            error.response = response
            raise

    def _attempts(self, error: requests.RequestException, url: str) -> str:
        """`` after N attempts``, as the client's retry policy counted them.

        A session of the caller's counts nothing; its policy gives the count
        only when it never retries (requests' default). Empty when unknown.
        """
        cause = error.args[0] if error.args else None
        attempts = getattr(cause, ATTEMPTS_ATTRIBUTE, None)
        if attempts is None:
            retry = getattr(self.session.get_adapter(url), "max_retries", None)
            total = getattr(retry, "total", None)
            if total is not None and not total:  # 0 or False: one attempt.
                attempts = 1
        if not isinstance(attempts, int):
            return ""

        return " after 1 attempt" if attempts == 1 else f" after {attempts} attempts"

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; the only place ``requests``' exceptions are translated."""
        url = self.base_url + path
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "application/json, application/problem+json",
        }
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.value}"
        timeout = kwargs.pop("timeout", self.timeout)
        if "json" in kwargs:
            headers["Content-Type"] = "application/json"
            kwargs["data"] = _json_bytes(method, url, kwargs.pop("json"))
        try:
            response = self.session.request(
                method, url, headers=headers, timeout=timeout, **kwargs
            )
        except requests.ConnectTimeout as error:
            # Before ConnectionError and Timeout: requests' ConnectTimeout is both.
            raise ConnectTimeout(
                f"{method} {url}: the connection never opened within the connect"
                f" timeout of {_seconds(_connect_timeout(timeout))}"
                f"{self._attempts(error, url)}; nothing was sent. Is the base URL"
                f" right (argument or {BASE_URL_ENV}), and the service reachable"
                " from here?"
            ) from error
        except requests.Timeout as error:
            raise Timeout(
                f"{method} {url}: the service took the request but sent no answer"
                f" within the read timeout of {_seconds(_read_timeout(timeout))}"
                f"{self._attempts(error, url)}; it is not sent again, as it may"
                " still be computing: a larger timeout helps for a large request"
            ) from error
        except requests.ConnectionError as error:
            attempts = self._attempts(error, url)
            if _dropped(error):
                raise ConnectionDropped(
                    f"{method} {url}: no answer{attempts}: the connection was"
                    f" dropped after the request was sent ({_reason(error)}); the"
                    " service may have restarted a worker: try again later, or"
                    " check its logs"
                ) from error
            raise ConnectionError(
                f"{method} {url}: cannot connect to the service{attempts}"
                f" ({_reason(error)}); is it running, and is the base URL right?"
                f" (argument or {BASE_URL_ENV})"
            ) from error
        except requests.RequestException as error:
            raise InitlabError(f"{method} {url}: {error}") from error

        if response.status_code >= 400:
            raise _api_error(response)

        return response


def _check_spec(spec: Any) -> None:
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"spec must be a mapping with 'dims' and 'layers', got"
            f" {type(spec).__name__}; load_spec(path) reads one from a file"
        )


def _overrides(overrides: Any) -> dict[str, Any]:
    """``overrides`` as the service reads them: an object of glob → scheme."""
    if not isinstance(overrides, Mapping):
        raise TypeError(
            "overrides must be a mapping of glob patterns over parameter or layer"
            " names to schemes, such as {'*.bias': 'constant', 'fc': {'name':"
            f" 'normal', 'std': 0.01}}; got {type(overrides).__name__}"
            f" {overrides!r}"
        )

    return dict(overrides)


def _import_format(config: Any, arch: Any) -> str:
    """The import format that ``config`` or ``arch``, whichever is given, implies."""
    if config is not None and arch is not None:
        raise TypeError(
            "import_spec takes config= (a Hugging Face model) or arch= (a"
            " torchvision model), not both; pass format= to send both as they are"
        )
    if config is not None:
        return "huggingface"
    if arch is not None:
        return "torchvision"

    raise TypeError(
        "import_spec needs config= (a Hugging Face config.json, as a mapping or"
        " a path) or arch= (a torchvision architecture, such as 'resnet50')"
    )


def _dim_sizes(dims: Any, where: str) -> Any:
    """Dim overrides with every integer size a plain ``int`` (numpy's included).

    ``operator.index`` turns any integer type into ``int`` without importing
    numpy, whose integers ``json`` cannot write. A float or bool size is
    refused here, naming ``where`` and the dim; ``None``, a value that is not
    a mapping and a size that is not a number go to the service as they are,
    for it to name.
    """
    if not isinstance(dims, Mapping):
        return dims

    sizes = {}
    for name, size in dims.items():
        if isinstance(size, bool) or (
            isinstance(size, numbers.Number) and not isinstance(size, numbers.Integral)
        ):
            raise TypeError(
                f"{where}: dim {name!r} must be an integer size, such as 1024;"
                f" got {size!r} ({type(size).__name__})"
            )
        sizes[name] = (
            operator.index(size) if isinstance(size, numbers.Integral) else size
        )

    return sizes


def _depth_rule(depth: Any) -> dict[str, Any] | None:
    """``depth`` as the service reads it: a rule name becomes ``{"rule": name}``."""
    if depth is None:
        return None
    if isinstance(depth, str):
        return {"rule": depth}
    if isinstance(depth, Mapping):
        return dict(depth)

    raise TypeError(
        "depth must be a rule name, 'completep' or 'depth_mup', or a mapping such"
        f" as {{'rule': 'completep', 'alpha': 0.5}}; got {type(depth).__name__}"
    )


def _check_options(
    *,
    parametrizations: Any,
    init_scheme: Any,
    base_dims: Any,
    **options: Any,
) -> dict[str, Any]:
    """The options both µP checks take, ready for JSON; those left at ``None`` out.

    Numbers go through :func:`_finite_number` (``lr``, ``weight_decay``) or
    :func:`_integer` (the counts and the seed); names and flags as they are.
    """
    if isinstance(parametrizations, str):
        raise TypeError(
            "parametrizations must be a list of names, such as ['sp', 'mup'] or"
            f" [{parametrizations!r}]; got the string {parametrizations!r}"
        )

    ready = {
        name: _finite_number(name, value)
        if name in ("lr", "weight_decay")
        else _integer(value)
        for name, value in options.items()
    }
    ready["base_dims"] = _dim_sizes(base_dims, "base_dims")
    if parametrizations is not None:
        ready["parametrizations"] = list(parametrizations)
    if isinstance(init_scheme, Mapping):
        init_scheme = dict(init_scheme)
    ready["init_scheme"] = init_scheme

    return {key: value for key, value in ready.items() if value is not None}


def _widths(widths: Any) -> Any:
    """``widths`` as a JSON list of integers (numpy's included), checked like dims.

    Any iterable of sizes will do (a list, a range, a numpy array); a string
    or a mapping is refused, and so is a float or bool width, naming its
    index. A value that is not iterable, or a width that is not a number,
    goes as it is, for the service to name.
    """
    if isinstance(widths, (str, Mapping)):
        raise TypeError(
            "widths must be a list of sizes of width_dim, such as [64, 256, 1024];"
            f" got {type(widths).__name__} {widths!r}"
        )
    if not isinstance(widths, Iterable):
        return widths

    sizes = []
    for index, width in enumerate(widths):
        if isinstance(width, bool) or (
            isinstance(width, numbers.Number)
            and not isinstance(width, numbers.Integral)
        ):
            raise TypeError(
                f"widths[{index}] must be an integer size, such as 1024;"
                f" got {width!r} ({type(width).__name__})"
            )
        sizes.append(
            operator.index(width) if isinstance(width, numbers.Integral) else width
        )

    return sizes


def _learning_rates(lrs: Any) -> Any:
    """``lrs`` as a JSON list of finite numbers (numpy's included), naming a bad one."""
    if isinstance(lrs, (str, Mapping)):
        raise TypeError(
            "lrs must be a list of base learning rates, such as [1e-3, 1e-2, 1e-1];"
            f" got {type(lrs).__name__} {lrs!r}"
        )
    if not isinstance(lrs, Iterable):
        return lrs

    return [_finite_number(f"lrs[{index}]", lr) for index, lr in enumerate(lrs)]


def _integer(value: Any) -> Any:
    """An integer of any type (numpy's included) as ``int``; anything else as it is.

    A bool, a float or a string goes to the service unchanged, for it to name.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return operator.index(value)

    return value


def _training_timeout(timeout: Any) -> Any:
    """``timeout`` with a read part of at least :data:`TRAINING_READ_TIMEOUT`.

    A number is requests' timeout for both connecting and reading, so it
    stays the connect timeout; ``None`` (wait for ever) and a read part
    already larger are kept, as is any other value requests takes.
    """
    if isinstance(timeout, numbers.Real) and not isinstance(timeout, bool):
        return (timeout, max(timeout, TRAINING_READ_TIMEOUT))
    if isinstance(timeout, tuple) and len(timeout) == 2:
        connect, read = timeout
        if read is not None:
            read = max(read, TRAINING_READ_TIMEOUT)
        return (connect, read)

    return timeout


def _finite_number(name: str, value: Any) -> Any:
    """``value`` ready for JSON: NaN and infinities refused, numpy floats as floats.

    JSON has no NaN or infinity (``json`` would write the non-standard
    ``NaN``), so such a value is refused before anything is sent. Values that
    are not real numbers go as they are, for the service to name.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    if not math.isfinite(value):
        raise ValueError(
            f"{name} must be a finite number (JSON has no NaN or infinity);"
            f" got {value!r}"
        )

    return float(value)


def _query(**parameters: Any) -> dict[str, str]:
    """Query parameters as the service reads them; ``None`` values are left out.

    A float is written in its shortest round-trip form (``repr``: ``0.05``,
    ``1e-05``), which is how JSON writes numbers; booleans are refused.
    """
    query = {}
    for key, value in parameters.items():
        if value is None:
            continue
        if isinstance(value, bool):
            raise TypeError(f"{key} must be a number or a string, got {value!r}")
        query[key] = repr(value) if isinstance(value, float) else str(value)

    return query


# The attribute of a transport error that says how many attempts were made.
ATTEMPTS_ATTRIBUTE = "initlab_attempts"


class _Retry(Retry):
    """urllib3's policy, with a read timeout never retried and Retry-After cut.

    urllib3 counts a read timeout and a connection dropped before the answer
    (``ProtocolError``) as one kind, read errors. Both mean the service got
    the request, but only the timeout means it may still be computing it; a
    dropped connection means the worker is gone, and the request, a pure
    computation, is sent again. Retry-After is cut to
    :data:`MAX_RETRY_AFTER` seconds (urllib3 caps it only from 2.7, at 6 h).

    The error that ends the attempts carries their count as
    :data:`ATTEMPTS_ATTRIBUTE`, for the message to say it.
    """

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        policy = self.new(read=False) if isinstance(error, ReadTimeoutError) else self
        try:
            return Retry.increment(
                policy,
                method=method,
                url=url,
                response=response,
                error=error,
                _pool=_pool,
                _stacktrace=_stacktrace,
            )
        except Exception as gave_up:
            setattr(gave_up, ATTEMPTS_ATTRIBUTE, len(self.history) + 1)
            raise


def retry_policy(retries: int, backoff: float) -> Retry:
    """The urllib3 retry policy of a client: connection failures and busy answers.

    ``retries`` bounds connection retries, connections dropped before the
    answer and retried answers alike; a read timeout is never retried,
    because the service got the request and may still be working on it.
    Every method is retried (the endpoints are pure). After the last retry
    the busy answer itself is returned, so that it raises the matching
    :class:`APIError` with its problem details.
    """
    if isinstance(retries, bool) or not isinstance(retries, numbers.Integral):
        raise TypeError(f"retries must be an integer >= 0, such as 3; got {retries!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0 (0 turns retries off); got {retries}")
    if isinstance(backoff, bool) or not isinstance(backoff, numbers.Real):
        raise TypeError(f"backoff must be a number of seconds >= 0; got {backoff!r}")
    if not math.isfinite(backoff) or backoff < 0:
        raise ValueError(
            f"backoff must be a finite number of seconds >= 0; got {backoff}"
        )

    retries = operator.index(retries)
    return _Retry(
        total=retries,
        connect=retries,
        status=retries,
        read=retries,
        other=False,
        redirect=False,
        allowed_methods=None,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=float(backoff),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _dropped(error: requests.ConnectionError) -> bool:
    """Whether the last attempt connected, sent the request and lost the
    connection before an answer (urllib3's ``ProtocolError``)."""
    cause = error.args[0] if error.args else None

    return isinstance(getattr(cause, "reason", cause), ProtocolError)


def _connect_timeout(timeout: Any) -> Any:
    return timeout[0] if isinstance(timeout, tuple) else timeout


def _read_timeout(timeout: Any) -> Any:
    return timeout[1] if isinstance(timeout, tuple) else timeout


def _seconds(value: Any) -> str:
    return "none" if value is None else f"{value:g} s"


def _reason(error: requests.ConnectionError) -> str:
    """The innermost cause of a connection failure, without urllib3's wrapping."""
    cause = error.args[0] if error.args else error
    reason = getattr(cause, "reason", None)

    return str(reason if reason is not None else cause)


class _Secret:
    """A value kept out of reprs, tracebacks' locals and ``vars()`` dumps."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"


def _checked_api_key(api_key: str | None) -> _Secret | None:
    """The key from the argument, else ``INITLAB_API_KEY``; ``None`` for none."""
    source = "api_key"
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV) or None
        source = API_KEY_ENV
    if api_key is None:
        return None
    # The key itself is never shown: error messages end up in logs.
    if not isinstance(api_key, str):
        raise TypeError(f"{source} must be a string; got {type(api_key).__name__}")
    api_key = api_key.strip()
    if not api_key or not api_key.isprintable():
        raise ValueError(
            f"{source} must be non-empty printable text on one line (it is sent"
            " as an HTTP header); check for a stray newline from the file it came"
            " from"
        )

    return _Secret(api_key)


def _checked_timeout(timeout: Any) -> Any:
    """``timeout`` as requests takes it, refused now rather than at the first call.

    Seconds (a positive finite number), a ``(connect, read)`` pair of such
    numbers or ``None`` each, or ``None`` to wait for ever.
    """
    if timeout is None:
        return None

    parts = timeout if isinstance(timeout, tuple) else (timeout,)
    if isinstance(timeout, tuple) and len(timeout) != 2:
        raise ValueError(
            f"timeout must be seconds or a (connect, read) pair; got {timeout!r}"
        )
    for part in parts:
        if part is None and isinstance(timeout, tuple):
            continue
        if isinstance(part, bool) or not isinstance(part, numbers.Real):
            raise TypeError(
                "timeout must be seconds (a number) or a (connect, read) pair of"
                f" them; got {timeout!r}"
            )
        if not math.isfinite(part) or part <= 0:
            raise ValueError(
                "timeout must be a positive finite number of seconds (None waits"
                f" for ever); got {timeout!r}"
            )

    return timeout


def _checked_base_url(base_url: str | None) -> str:
    """The base URL without surrounding spaces or a trailing slash.

    ``None`` takes ``INITLAB_URL`` (unset or blank: the default). What is
    given must be an http or https URL with a host, a port from 1 to 65535
    if any, no ``user:password@`` and no query or fragment, since every
    endpoint's path is appended to it. Refused now rather than at the first
    call; a message never shows a password given in the URL.
    """
    source = "base_url"
    if base_url is None:
        base_url = os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
        source = BASE_URL_ENV
    if not isinstance(base_url, str):
        raise TypeError(
            f"{source} must be a URL string such as {DEFAULT_BASE_URL!r}; got"
            f" {type(base_url).__name__}"
        )

    base_url = base_url.strip()
    if not base_url:
        raise ValueError(
            f"{source} must be the service's URL, such as {DEFAULT_BASE_URL!r};"
            f" got an empty string (leave it out, or pass None, to use"
            f" {BASE_URL_ENV} or the default)"
        )
    shown = _without_password(base_url)
    try:
        parts = urlsplit(base_url)
    except ValueError as error:  # An unclosed "[" of an IPv6 address.
        raise ValueError(
            f"{source} must be an http(s) URL such as {DEFAULT_BASE_URL!r};"
            f" {shown!r} does not parse ({error})"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        hint = "" if "://" in base_url else f"; did you mean 'http://{shown}'?"
        raise ValueError(
            f"{source} must be an http(s) URL such as {DEFAULT_BASE_URL!r},"
            f" got {shown!r}{hint}"
        )
    userinfo, at, host_port = parts.netloc.rpartition("@")
    if at:
        what = "a user name and password" if ":" in userinfo else "a user name"
        plain = urlunsplit(parts._replace(netloc=host_port, query="", fragment=""))
        raise ValueError(
            f"{source} must not carry {what} (got {shown!r}): the service"
            f" takes an API key instead; give {plain!r} and the key as api_key"
            f" or {API_KEY_ENV}"
        )
    host, port = _host_and_port(host_port)
    if not host:
        raise ValueError(
            f"{source} must name a host, as in {DEFAULT_BASE_URL!r}; got {shown!r}"
        )
    if port is not None and not (
        port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
    ):
        raise ValueError(
            f"{source} has the port {port!r}; a port is a number from 1 to 65535"
            f" (or none, for the scheme's default), as in {DEFAULT_BASE_URL!r};"
            f" got {shown!r}"
        )
    if "?" in base_url or "#" in base_url:
        prefix = urlunsplit(parts._replace(query="", fragment=""))
        raise ValueError(
            f"{source} must not have a query or a fragment, since each endpoint's"
            f" path is appended to it; got {shown!r}: give {prefix!r}"
        )

    return base_url.rstrip("/")


def _host_and_port(host_port: str) -> tuple[str, str | None]:
    """The host and the port text of ``host:port`` (``None``: no colon).

    An IPv6 host is in brackets (``[::1]:8000``), its own colons not a port's.
    """
    if host_port.startswith("["):
        host, bracket, rest = host_port.partition("]")
        if not bracket or not rest:
            return host + bracket, None
        return host + bracket, rest[1:] if rest.startswith(":") else rest
    host, colon, port = host_port.partition(":")

    return host, port if colon else None


def _without_password(url: str) -> str:
    """``url`` with the password of a ``user:password@`` part written ``***``.

    Works on the text itself, so that a URL too broken to parse is masked too.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    ends = [index for index in map(rest.find, "/?#") if index >= 0]
    authority_end = min(ends, default=len(rest))
    userinfo, at, host = rest[:authority_end].rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]

    return f"{scheme}{separator}{user}:***@{host}{rest[authority_end:]}"


def _json_bytes(method: str, url: str, body: Any) -> bytes:
    """``body`` as the UTF-8 JSON the service reads, or :class:`InvalidRequest`.

    numpy's numbers become plain ones; NaN, infinities and values JSON cannot
    hold are refused with the pointer of the field, before anything is sent.
    """
    try:
        ready = json_ready(body)
    except NotJSON as error:
        raise InvalidRequest(
            f"{method} {url} not sent: {error}", pointer=error.pointer
        ) from None

    return json.dumps(ready, ensure_ascii=False, separators=(",", ":")).encode()


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        content_type = response.headers.get("Content-Type", "")
        raise InvalidResponse(
            f"{response.request.method} {response.url} answered"
            f" {response.status_code} with a body that is not JSON"
            f" (Content-Type {content_type!r})",
            response,
        ) from error


def _json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidResponse(f"expected a JSON object, got {type(data).__name__}")

    return data


def _retry_after(response: requests.Response) -> float | None:
    """The wait an answer's ``Retry-After`` asks for, in seconds, as asked.

    A delay in seconds or an HTTP date (RFC 9110, section 10.2.3); ``None``
    when there is none or it cannot be read. Not cut to
    :data:`MAX_RETRY_AFTER`, as the waits between retries are, so that an
    error can say what the service asked.
    """
    value = response.headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # datetime.timezone.utc, not datetime.UTC: the client runs on Python 3.9.
    utc = datetime.timezone.utc  # noqa: UP017
    if when.tzinfo is None:  # RFC 9110 dates are in GMT.
        when = when.replace(tzinfo=utc)

    return max((when - datetime.datetime.now(utc)).total_seconds(), 0.0)


def _attempts_made(response: requests.Response) -> int | None:
    """How many times the request of ``response`` was sent, retries included.

    urllib3 hands each answer the retry policy it was sent under, whose
    history lists the attempts before it; ``None`` when there is no such
    policy (an adapter that is not urllib3's).
    """
    history = getattr(getattr(response.raw, "retries", None), "history", None)
    if not isinstance(history, tuple):
        return None

    return len(history) + 1


def _api_error(response: requests.Response) -> APIError:
    """The :class:`APIError` for an error answer, problem+json or not.

    A proxy in front of the service may answer with HTML; then the status and
    reason are all there is, and the request id comes from ``X-Request-ID``.
    """
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {}

    error_class = api_error_class(response.status_code, problem.get("type"))
    details: dict[str, Any] = {}
    if error_class is TooManyRequests:
        details = {"retry_after": _retry_after(response)}
    if error_class is ServiceBusy:
        details = {
            "retry_after": _retry_after(response),
            "attempts": _attempts_made(response),
        }
    if error_class is LimitExceeded:
        details = {
            "limit": problem.get("limit"),
            "limit_value": problem.get("limit_value"),
            "estimate": problem.get("estimate"),
        }
    return error_class(
        status=response.status_code,
        title=str(problem.get("title") or response.reason or "HTTP error"),
        detail=problem.get("detail"),
        type=problem.get("type"),
        instance=problem.get("instance") or response.headers.get("X-Request-ID"),
        errors=field_errors(problem.get("errors")),
        response=response,
        **details,
    )
