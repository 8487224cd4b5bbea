"""Trained zstd dictionaries: what lets small messages compress well one at a time (Open tier).

A message of two kilobytes compressed alone says its headers and boilerplate from scratch;
with a dictionary trained on its neighbours it does not. zstd writes the dictionary id into
each frame, so a reader finds the dictionary it needs without being told. Dictionaries are
made of fragments of real mail, so they are kept sealed with the vault's keys, in the catalog.
"""

from __future__ import annotations

import hashlib
import struct

import zstandard
from sqlalchemy import Engine, insert, select

from mailvault.errors import IntegrityError
from mailvault.store import schema
from mailvault.store.catalog import now
from mailvault.store.crypto import Keyring

MIN_SAMPLES = 64
_AAD = b"mailvault-dictionary"


def train(samples: list[bytes], size: int) -> bytes | None:
    """A dictionary of about ``size`` bytes trained on samples; None when they are too few."""
    if len(samples) < MIN_SAMPLES or size <= 0:
        return None
    pool: list[bytes | bytearray | memoryview[int]] = [*samples]
    try:
        return bytes(zstandard.train_dictionary(size, pool).as_bytes())
    except zstandard.ZstdError:
        return None


def dictionary_id(data: bytes) -> int:
    """The id zstd will write into frames made with this dictionary."""
    return int(zstandard.ZstdCompressionDict(data).dict_id())


def save(engine: Engine, keyring: Keyring, tier: str, data: bytes) -> int:
    """Keep a dictionary (sealed) and return its id."""
    dict_id = dictionary_id(data)
    key_id, sealed = keyring.seal(data, _aad(dict_id))
    with engine.begin() as conn:
        exists = conn.execute(select(schema.dictionaries.c.dict_id)
                              .where(schema.dictionaries.c.dict_id == dict_id)).first()
        if exists is None:
            conn.execute(insert(schema.dictionaries).values(
                dict_id=dict_id, tier=tier, key_id=key_id, sealed=sealed,
                sha256=hashlib.sha256(data).hexdigest(), created_at=now()))
    return dict_id


def load(engine: Engine, keyring: Keyring, dict_id: int) -> bytes:
    """A stored dictionary by id, authenticated and checked against its hash."""
    with engine.connect() as conn:
        row = conn.execute(select(schema.dictionaries)
                           .where(schema.dictionaries.c.dict_id == dict_id)).first()
    if row is None:
        raise IntegrityError(f"zstd dictionary {dict_id} is not in the catalog.")
    data = keyring.open(row.key_id, row.sealed, _aad(dict_id))
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise IntegrityError(f"zstd dictionary {dict_id} does not match its hash.")
    return data


def newest(engine: Engine, tier: str) -> int | None:
    """The id of the newest dictionary made for a tier."""
    with engine.connect() as conn:
        return conn.execute(select(schema.dictionaries.c.dict_id)
                            .where(schema.dictionaries.c.tier == tier)
                            .order_by(schema.dictionaries.c.created_at.desc())
                            .limit(1)).scalar()


def _aad(dict_id: int) -> bytes:
    return _AAD + struct.pack(">Q", dict_id)
