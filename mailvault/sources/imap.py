"""A narrow, read-only adapter over imapclient: connect, log in, list, EXAMINE, SEARCH and
FETCH BODY.PEEK[]. Nothing here can change the mailbox (no SELECT, STORE, EXPUNGE or APPEND).

imapclient's and the socket layer's exceptions are translated into SourceError here, with
``retryable`` set for what a reconnection may cure (a dropped connection, an unreachable host)
and not for what it will not (a wrong password, a certificate that does not verify), and with
the password scrubbed from whatever the server said (``redaction.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailvault.errors import SourceError
from mailvault.sources.redaction import Redactor
from mailvault.sources.tls import client_context, network_error

FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE", b"FLAGS"]
BODY = b"BODY[]"
NOSELECT = b"\\Noselect"
NONEXISTENT = b"\\NonExistent"
# UIDs per SEARCH/FETCH command, so that a command line stays a reasonable length.
UID_CHUNK = 1000


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect."""

    host: str
    port: int
    tls: str
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    timeout_s: float = 60.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class Tokens(Protocol):
    """Where an OAuth2 login's access tokens come from (``oauth.py``)."""

    def token(self) -> str:
        """A token good for a login now."""
        ...

    def refused(self, token: str) -> None:
        """The server refused ``token``: do not hand it out again."""
        ...


@dataclass(frozen=True)
class Bearer:
    """An OAuth2 login: the SASL mechanism (XOAUTH2 or OAUTHBEARER) and its tokens."""

    mechanism: str
    tokens: Tokens


@dataclass(frozen=True)
class Credentials:
    """A login: plain LOGIN, SASL PLAIN when ``authzid`` names the user to act as, or an
    OAuth2 access token when ``bearer`` is given."""

    user: str
    password: str = ""
    authzid: str | None = None
    bearer: Bearer | None = None

    def sasl_plain(self) -> str:
        """The SASL PLAIN message (RFC 4616): authorization identity, user, password."""
        return "\0".join([self.authzid or "", self.user, self.password])

    def redactor(self) -> Redactor:
        """What removes this password, in each form a login sends it, from server text."""
        return Redactor.of(self.password, (self.sasl_plain(),))


@dataclass(frozen=True)
class Folder:
    """A folder as LISTed: decoded name and its attributes (SPECIAL-USE among them)."""

    name: str
    attributes: tuple[str, ...]
    delimiter: str = "/"

    @property
    def selectable(self) -> bool:
        return not {"\\Noselect", "\\NonExistent"} & set(self.attributes)

    @property
    def special_use(self) -> set[str]:
        """SPECIAL-USE names without the backslash: {'Junk'}, {'Sent'}."""
        return {a.lstrip("\\").capitalize() for a in self.attributes} & {
            "All", "Archive", "Drafts", "Flagged", "Junk", "Sent", "Trash"}


@dataclass(frozen=True)
class FolderState:
    """What EXAMINE says about a folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class Fetched:
    """One message as the server returned it, or why it did not."""

    uid: int
    raw: bytes | None
    internal_date: datetime | None = None
    flags: tuple[str, ...] = ()
    reason: str = ""


class ImapSession:
    """One logged-in, read-only IMAP connection."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials) -> None:
        self.endpoint = endpoint
        self.user = credentials.authzid or credentials.user
        self._redactor = credentials.redactor()
        self._bearer = credentials.bearer
        context = client_context(endpoint.ca_file, endpoint.insecure_skip_verify)
        with self._translated("connect"):
            self._client = imapclient.IMAPClient(
                endpoint.host, endpoint.port, ssl=endpoint.tls == "implicit",
                ssl_context=context, timeout=endpoint.timeout_s)
        try:
            self._client.normalise_times = False
            with self._translated("STARTTLS"):
                if endpoint.tls == "starttls":
                    self._client.starttls(context)
            if self._bearer is not None:
                self._bearer_login(credentials.user, self._bearer)
            else:
                with self._translated("login"):
                    if credentials.authzid:
                        self._client.plain_login(credentials.user, credentials.password,
                                                 credentials.authzid)
                    else:
                        self._client.login(credentials.user, credentials.password)
        except SourceError:
            self.close()
            raise

    def _bearer_login(self, user: str, bearer: Bearer) -> None:
        """AUTHENTICATE XOAUTH2 or OAUTHBEARER with a token from ``bearer``; a token the
        server refuses is given back, so that the next login fetches another."""
        token = bearer.tokens.token()
        # The SASL messages the two mechanisms send, so an echo of either is scrubbed whole.
        self._redactor = Redactor.of(token, (
            f"user={user}\1auth=Bearer {token}\1\1", f"n,a={user},\1auth=Bearer {token}\1\1"))
        with self._translated("login"):
            try:
                if bearer.mechanism == "OAUTHBEARER":
                    self._client.oauthbearer_login(user, token)
                else:
                    self._client.oauth2_login(user, token)
            except LoginError:
                # Refused, not merely cut off: this token is not to be presented again.
                bearer.tokens.refused(token)
                raise

    def close(self) -> None:
        """Log out; a connection that is already gone is simply dropped."""
        try:
            self._client.logout()
        except (IMAPClientError, OSError):
            with suppress(OSError):
                self._client.shutdown()

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def folders(self) -> list[Folder]:
        """Every folder (names decoded from modified UTF-7), SPECIAL-USE attributes included."""
        with self._translated("LIST"):
            listed = self._client.list_folders()
        return [Folder(str(name), tuple(_text(f) for f in flags), _text(sep or b"/"))
                for flags, sep, name in listed]

    def examine(self, folder: str) -> FolderState:
        """Open a folder read-only (EXAMINE)."""
        with self._translated(f"EXAMINE {folder}"):
            info = self._client.select_folder(folder, readonly=True)
        return FolderState(int(info[b"UIDVALIDITY"]), _int(info.get(b"UIDNEXT")),
                           int(info[b"EXISTS"]))

    def search(self, above_uid: int = 0, since: date | None = None,
               before: date | None = None) -> list[int]:
        """UIDs in the examined folder above ``above_uid`` within the date range (server-side
        SEARCH on INTERNALDATE), ascending."""
        criteria: list[Any] = []
        if above_uid:
            criteria += ["UID", f"{above_uid + 1}:*"]
        if since:
            criteria += ["SINCE", since]
        if before:
            criteria += ["BEFORE", before]
        with self._translated("SEARCH"):
            found = self._client.search(criteria or ["ALL"])
        # "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8).
        return sorted(int(uid) for uid in found if int(uid) > above_uid)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID (cheap: lets fetches be cut by bytes, not only count)."""
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), UID_CHUNK):
            chunk = uids[start:start + UID_CHUNK]
            with self._translated("FETCH RFC822.SIZE"):
                answer = self._client.fetch(chunk, [b"RFC822.SIZE"])
            sizes.update({int(uid): int(data.get(b"RFC822.SIZE", 0))
                          for uid, data in answer.items()})
        return sizes

    def fetch(self, uids: list[int]) -> list[Fetched]:
        """The messages of ``uids`` with BODY.PEEK[] (flags untouched), in UID order.

        When the server refuses the batch, each UID is asked for alone, so that one message
        the server will not return costs only itself. A UID expunged meanwhile is left out.
        """
        try:
            with self._translated("FETCH"):
                answer = self._client.fetch(uids, FETCH_ITEMS)
        except SourceError as exc:
            if exc.retryable or len(uids) == 1:
                raise
            return [item for uid in uids for item in self._fetch_one(uid)]
        return [_fetched(uid, answer[uid]) for uid in uids if uid in answer]

    def _fetch_one(self, uid: int) -> list[Fetched]:
        try:
            return self.fetch([uid])
        except SourceError as exc:
            if exc.retryable:
                raise
            return [Fetched(uid, None, reason=f"the server refused to return it: {exc}")]

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Lower-layer exceptions as SourceError; what the server said in them is taken with
        the password scrubbed (only that: our own words stay whole, even if the password is
        'wrong')."""
        where = self.endpoint.where
        try:
            yield
        except LoginError as exc:
            if self._bearer is not None:
                # Retryable: the reconnection presents a newly fetched token.
                raise SourceError(f"{where} refused the OAuth2 access token for {self.user} "
                                  f"({self._said(exc)}): it has expired or been revoked, or "
                                  "it does not grant IMAP access to this mailbox.",
                                  retryable=True) from None
            raise SourceError(f"{where} refused the login of {self.user}: wrong user name or "
                              f"password ({self._said(exc)}).") from None
        except IMAPClientAbortError as exc:
            raise SourceError(f"the connection to {where} dropped during {action} "
                              f"({self._said(exc)}).", retryable=True) from None
        except IMAPClientError as exc:
            raise SourceError(f"{where} refused {action}: {self._said(exc)}.") from None
        except OSError as exc:
            raise network_error(exc, where, action) from None

    def _said(self, exc: Exception) -> str:
        return self._redactor.scrub(_reply(exc))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _reply(exc: Exception) -> str:
    """The server's words in an imapclient exception. imaplib raises with the reply's bytes,
    whose str() is their repr ("b'...'"), and imapclient's LoginError keeps only that: it is
    read back as bytes, so the text is as the server sent it (and an echoed password is found
    by the redactor as it was sent, not with its backslashes doubled)."""
    text = str(exc).strip()
    if text[:2] in ("b'", 'b"'):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else text[2:-1]
    return text or type(exc).__name__


def _fetched(uid: int, data: dict[bytes, Any]) -> Fetched:
    raw = data.get(BODY)
    internal = data.get(b"INTERNALDATE")
    flags = tuple(_text(f) for f in data.get(b"FLAGS", ()))
    if raw is None:
        return Fetched(uid, None, internal, flags,
                       "the server answered without the message's body")
    return Fetched(uid, bytes(raw), internal if isinstance(internal, datetime) else None, flags)
