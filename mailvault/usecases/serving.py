"""Running the archive's services (``serve``): who may start them, and the audit entry
that says they started (Permission.SETTINGS: serving applies the vault's settings, its
listen addresses and their access rules).

The services themselves are run by ``mailvault.serve`` (a face-level module, since it will
serve the web face too), handed in as ``run``, so the use case decides and records while the
face owns the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.store import audit
from mailvault.vault import Vault

# Told what listens once every service is up.
Ready = Callable[[list[str]], None]
# Runs the services until stopped: (vault, listen overrides, when ready, actor name).
Runner = Callable[[Vault, dict[str, list[str]], Ready, str], None]


def serve(vault: Vault, who: Principal, overrides: dict[str, list[str]], on_ready: Ready,
          run: Runner) -> None:
    """Run the services with ``run`` until it returns; once they listen, record ``serve``
    (with the endpoints) as ``who`` and tell ``on_ready``."""
    require(who, Permission.SETTINGS)

    def ready(endpoints: list[str]) -> None:
        with vault.engine.begin() as conn:
            audit.record(conn, who.name, "serve", {"endpoints": endpoints})
        on_ready(endpoints)

    run(vault, overrides, ready, who.name)
