"""The error tree. Every error mailvault raises on purpose derives from MailvaultError.

    MailvaultError            one clear sentence for a person; the CLI prints it and exits 1
    ├── ConfigError           a setting is missing, malformed, or contradicts another
    ├── VaultError            no vault at the path, a vault that cannot be opened or created
    │   └── KeyringError      the master key is missing or the passphrase is wrong
    ├── StoreError            a blob cannot be written or read
    │   ├── StorageFullError  the disk is full: callers answer "try again later", never "done"
    │   └── IntegrityError    bytes read back do not hash to what the catalog says
    ├── NotFoundError         no message, source or policy by that name or id
    ├── QueryError            a search query that cannot be parsed
    ├── InputError            a path or file that cannot be imported (missing, unreadable)
    │   └── BusyError         a job (tier move, export, restore, disposition) runs now elsewhere
    ├── SourceError           a remote source failed (login, network, TLS); carries whether to retry
    ├── GatewayError          a gateway mailbox refused an operation
    │   ├── MailboxUnavailable  no mailbox by that id or address, or it is suspended
    │   └── MailboxPasswordError  the password does not unlock the mailbox's key
    ├── AuthenticationError   a sign-in or API token refused; one sentence that never says which
    │   │                     part was wrong (the audit log has the reason)
    │   └── SecondFactorRequired  the password was right and the account asks for a TOTP code
    └── PermissionDenied      a known principal asked for what none of its roles allows

Lower-layer exceptions (OSError, sqlite3, tantivy) are translated at the module that meets them,
so the CLI and the web only ever handle this tree.
"""

from __future__ import annotations


class MailvaultError(Exception):
    """Root of every error mailvault raises on purpose; str() is one sentence for a person."""


class ConfigError(MailvaultError):
    """A setting is missing, malformed or contradicts another."""


class VaultError(MailvaultError):
    """There is no vault at the path, or it cannot be opened or created."""


class KeyringError(VaultError):
    """The master key is missing, or the passphrase does not unlock it."""


class StoreError(MailvaultError):
    """A blob could not be written or read."""


class StorageFullError(StoreError):
    """No space is left where blobs or the spool are written."""


class IntegrityError(StoreError):
    """Bytes read back do not match the hash recorded for them."""


class NotFoundError(MailvaultError):
    """No object exists by that name or id."""


class QueryError(MailvaultError):
    """A search query could not be parsed."""


class InputError(MailvaultError):
    """A file or folder given to import cannot be read as mail."""


class BusyError(InputError):
    """The job asked for is running now in another process or on another node."""


class SourceError(MailvaultError):
    """A remote source failed; ``retryable`` says whether trying again later may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class GatewayError(MailvaultError):
    """A gateway mailbox refused an operation (its state, its password, a malformed request)."""


class MailboxUnavailable(GatewayError):
    """No gateway mailbox by that id or address, or it accepts no mail (suspended)."""


class MailboxPasswordError(GatewayError):
    """The password given does not unlock the mailbox's private key; the sentence never says
    more than that."""


class AuthenticationError(MailvaultError):
    """A sign-in or an API token was refused.

    The sentence is the same whatever was wrong (name, password, code, lock, disabled), so
    that it tells a guesser nothing; ``reason`` is for the audit log, never for the screen.
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class SecondFactorRequired(AuthenticationError):
    """The password was right, and the account needs a TOTP code as well."""


class PermissionDenied(MailvaultError):
    """A known principal asked for something none of its roles allows."""
