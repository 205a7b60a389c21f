"""The global options of ``initlab`` and the client they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..client import API_KEY_ENV, BASE_URL_ENV, Client
from .output import Output

Result = TypeVar("Result")


@dataclass
class Settings:
    """The global options, and the base URL once a client has resolved it."""

    url: str | None
    api_key: str | None
    timeout: float | None
    retries: int | None
    base_url: str | None = None

    def client(self) -> Client:
        """A client with the options given; those left out take its defaults."""
        options: dict[str, Any] = {"api_key": self.api_key}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.retries is not None:
            options["retries"] = self.retries
        try:
            client = Client(self.url, **options)
        except (ValueError, TypeError) as error:
            # The client names its argument or the variable it read; here the
            # option and the variable are one setting.
            message = str(error)
            hint = "--url / " + BASE_URL_ENV
            if message.startswith(("api_key", API_KEY_ENV)):
                hint = "--api-key / " + API_KEY_ENV
            elif message.startswith("timeout"):
                hint = "--timeout"
            elif message.startswith(("retries", "backoff")):
                hint = "--retries"
            raise click.BadParameter(message, param_hint=hint) from None
        self.base_url = client.base_url

        return client

    def ask(self, what: str, call: Callable[[Client], Result]) -> Result:
        """``call(client)`` with a spinner saying ``what`` on a terminal's stderr."""
        with self.client() as client, Output().status(f"{what} ({client.base_url})"):
            return call(client)
