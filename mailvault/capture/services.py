"""What the long-running services of `mailvault serve` share, and what a service is.

Every service (SMTP, milter, the source scheduler, the lifecycle pass, the web application)
is built by a factory from one ``ServeContext``; ``serve.py`` lists the factories and runs
them. The context lives here, beside the spool and counters it holds, so that a capability
building a service never imports the module that runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mailvault.capture.spool import Spool
from mailvault.capture.status import CaptureStatus

if TYPE_CHECKING:
    from mailvault.vault import Vault


@dataclass
class ServeContext:
    """What every service shares: the vault, the spool, the counters, command-line overrides
    (service name -> listen addresses, replacing the configured ones)."""

    vault: Vault
    spool: Spool
    status: CaptureStatus
    overrides: dict[str, list[str]] = field(default_factory=dict)


class Service(Protocol):
    """A long-running service: ``start`` returns what it listens on, ``stop`` ends it."""

    name: str

    async def start(self) -> list[str]: ...

    async def stop(self) -> None: ...


ServiceFactory = Callable[[ServeContext], Service | None]
