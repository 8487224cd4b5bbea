"""Setting up a vault's audit chain when it opens, and moving its head file when it closes.

A vault gets its chain key at ``init``; a vault made by an older version gets it the first
time it is opened. Either way the key is announced by a key-introduction entry, the first
entry hashed with it. The head file is written before that entry, naming no entry yet; it
then follows the newest committed entry whenever a vault opens or closes, but never moves
away from an entry that the log no longer holds: once the end of the log was cut off, the
head file keeps saying so.

Both steps hold an exclusive lock on the vault folder, so two processes opening a vault at the
same time make one key and one introduction.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, select

from mailvault.errors import IntegrityError, VaultError
from mailvault.store import audit, schema
from mailvault.store.audit_head import Head, read_head_file, remove_temporaries, write_head_file
from mailvault.store.crypto import Keyring, create_chain_key, load_chain_key


def attach(engine: Engine, keyring: Keyring, keys_dir: Path, head_file: Path) -> audit.Chain:
    """Load (or make) the chain key, lend it to the engine's connections, and make sure the
    log holds the key-introduction entry."""
    with _locked(head_file.parent):
        key = load_chain_key(keys_dir, keyring)
        if key is None:
            key = create_chain_key(keys_dir, keyring)
            _write(head_file, key, Head(0, audit.GENESIS))
        chain = audit.Chain(key, head_file)
        engine.update_execution_options(**{audit.CHAIN_OPTION: chain})
        with engine.connect() as conn:
            introduced = audit.last(conn, audit.KEY_ACTION) is not None
        if not head_file.exists() and not introduced:
            # A crash between making the key and writing the head file.
            _write(head_file, key, Head(0, audit.GENESIS))
        if not introduced:
            with engine.begin() as conn:
                audit.record(conn, "mailvault", audit.KEY_ACTION, {
                    "key": chain.fingerprint(), "algorithm": "hmac-sha256",
                    "earlier_entries": "sha256"})
    return chain


def settle(engine: Engine, chain: audit.Chain) -> None:
    """Move the head file to the newest entry, if the log still holds the entry it names.

    Called where the caller has no transaction open, so the newest entry is committed."""
    with _locked(chain.head_file.parent):
        remove_temporaries(chain.head_file.parent)
        try:
            anchored = read_head_file(chain.head_file, chain.key)
        except IntegrityError:
            return
        with engine.connect() as conn:
            if anchored.seq:
                held = conn.execute(select(schema.audit_log.c.hash)
                                    .where(schema.audit_log.c.seq == anchored.seq)).scalar()
                if held != anchored.hash:
                    return
            seq, digest = audit.head(conn)
        if seq > anchored.seq:
            try:
                write_head_file(chain.head_file, chain.key, Head(seq, digest))
            except OSError:
                # A head file left behind only lags (it is a lower bound); the next open or
                # close moves it, and closing a vault must not fail over it.
                return


def _write(path: Path, key: bytes, head: Head) -> None:
    try:
        write_head_file(path, key, head)
    except OSError as exc:
        raise VaultError(f"the audit head file {path} cannot be written: {exc.strerror}.") \
            from exc


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
