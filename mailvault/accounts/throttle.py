"""Sign-in attempts per client address: after ``attempts`` within ``window_s`` the address
is refused until the window has passed (the per-account lock-out is accounts.signin's).
The web's sign-in counts every attempt; SMTP AUTH counts failures.

Kept in the memory of the one serve process (a restart forgets it; the account lock-out,
kept in the catalog, does not). An IPv6 client counts by its /64, since one host can use
any address of it.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import deque
from dataclasses import dataclass, field


def client_key(address: str) -> str:
    """The key a client address counts under: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class SigninThrottle:
    """Sliding-window count of sign-in attempts by client address."""

    attempts: int
    window_s: float
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked_until(self, address: str, now: float) -> float | None:
        """When the address may try again, if it is refused now."""
        if self.attempts <= 0:
            return None
        with self._lock:
            times = self._recent(client_key(address), now)
            if len(times) >= self.attempts:
                return times[0] + self.window_s
        return None

    def count(self, address: str, now: float) -> bool:
        """Count one attempt; True when this attempt used up the address's allowance
        (the moment to audit the lock-out)."""
        if self.attempts <= 0:
            return False
        with self._lock:
            key = client_key(address)
            times = self._recent(key, now)
            times.append(now)
            self._seen[key] = times
            if len(self._seen) > 100_000:  # bounded: forget addresses quiet for a window
                for stale in [k for k, v in self._seen.items()
                              if not v or v[-1] <= now - self.window_s]:
                    del self._seen[stale]
            return len(times) == self.attempts

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times
