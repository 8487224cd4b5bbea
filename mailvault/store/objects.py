"""Blobs in an S3-compatible bucket with Object Lock: local volumes first, objects second.

A node writes and fsyncs blobs to local volume files exactly as the embedded store does, so a
250 or an "archived" still means the bytes are on this node's disk. A sealed volume (several
MB: ``[store] s3_object_mb``) is then uploaded as one object carrying its Object Lock: the
retain-until date of the longest-kept message it holds, and a legal hold when any of them is
held (compliance/object_lock.py decides both; this module only talks to the bucket). Once
the bucket has it, the catalog's volume row names the object (``s3://BUCKET/KEY``) and the
local file is removed; reads of that volume are ranged GETs of one record each.

An object's key carries the SHA-256 of its bytes, so two vaults sharing a prefix (or a
re-upload after a crash) never overwrite another volume's object. Deleting is by version
(a bucket with Object Lock keeps versions): the bucket itself refuses to delete a locked
version, and that refusal reaches the caller as one sentence.
"""

from __future__ import annotations

import configparser
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailvault.errors import ConfigError, StoreError
from mailvault.store import file_modes
from mailvault.store.blobs import VolumeBlobStore
from mailvault.store.crypto import Keyring
from mailvault.store.volumes import Location, Volumes

SCHEME = "s3://"
CREDENTIALS_FILE = "s3-credentials.sealed"
_CREDENTIALS_LABEL = "s3-credentials"
LOCK_MODES = ("compliance", "governance")


@dataclass(frozen=True)
class Bucket:
    """Where objects go: bucket, key prefix, endpoint (empty: AWS), region, lock mode."""

    name: str
    prefix: str
    endpoint: str = ""
    region: str = "us-east-1"
    lock_mode: str = "compliance"

    @classmethod
    def parse(cls, url: str, endpoint: str = "", region: str = "us-east-1",
              lock_mode: str = "compliance") -> Bucket:
        """``s3://BUCKET/PREFIX`` (the prefix may be empty); ConfigError when it is not."""
        if not url.startswith(SCHEME) or not url[len(SCHEME):].split("/", 1)[0]:
            raise ConfigError(f"{url!r} is not an S3 location (write it as s3://BUCKET/PREFIX).")
        if lock_mode not in LOCK_MODES:
            raise ConfigError(f"{lock_mode!r} is not an Object Lock mode (use compliance or "
                              "governance).")
        name, _, prefix = url[len(SCHEME):].partition("/")
        return cls(name, prefix.strip("/"), endpoint, region or "us-east-1", lock_mode)

    def key_for(self, volume_id: int, digest: str) -> str:
        """The object key of a volume with these bytes."""
        name = f"{volume_id:08d}-{digest[:32]}.vol"
        return f"{self.prefix}/{name}" if self.prefix else name

    @staticmethod
    def digest_of(key: str) -> str:
        """The SHA-256 prefix an object's key names ('' for a key not made by ``key_for``)."""
        name = key.rsplit("/", 1)[-1]
        stem, _, digest = name.removesuffix(".vol").partition("-")
        return digest if stem.isdigit() and name.endswith(".vol") else ""

    def url(self, key: str) -> str:
        """What the catalog's volume row says once the object holds the volume."""
        return f"{SCHEME}{self.name}/{key}"

    def key_of(self, url: str) -> str:
        """The key in a URL of this bucket (StoreError for another bucket's)."""
        head = f"{SCHEME}{self.name}/"
        if not url.startswith(head):
            raise StoreError(f"{url} is not in the vault's bucket {self.name}.")
        return url[len(head):]


@dataclass(frozen=True)
class Credentials:
    """An access key pair (never written anywhere in clear)."""

    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class Lock:
    """An object's Object Lock: retained until (None: no retention), legal hold on or off."""

    retain_until: int | None
    legal_hold: bool


def read_credentials_file(path: Path) -> Credentials:
    """An AWS-style credentials file (``aws_access_key_id`` and ``aws_secret_access_key`` in
    its first section); ConfigError in one sentence when it has neither."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"the S3 credentials file {path} cannot be read: {exc}.") from exc
    for section in parser.sections():
        key = parser.get(section, "aws_access_key_id", fallback="").strip()
        secret = parser.get(section, "aws_secret_access_key", fallback="").strip()
        if key and secret:
            return Credentials(key, secret)
    raise ConfigError(f"the S3 credentials file {path} has no aws_access_key_id and "
                      "aws_secret_access_key.")


def store_credentials(keys_dir: Path, keyring: Keyring, credentials: Credentials) -> None:
    """Keep credentials in the keys folder, sealed with the vault's master key."""
    text = f"{credentials.access_key_id}\n{credentials.secret_access_key}".encode()
    file_modes.write_replacing(keys_dir / CREDENTIALS_FILE,
                               keyring.wrap_secret(text, _CREDENTIALS_LABEL).encode())


def stored_credentials(keys_dir: Path, keyring: Keyring) -> Credentials | None:
    """The credentials sealed in the keys folder, if any."""
    path = keys_dir / CREDENTIALS_FILE
    if not path.exists():
        return None
    key, _, secret = keyring.unwrap_secret(path.read_text(), _CREDENTIALS_LABEL).decode() \
        .partition("\n")
    return Credentials(key, secret)


class Objects:
    """The few bucket calls the store makes, each turning a refusal into one sentence."""

    def __init__(self, bucket: Bucket, credentials: Credentials | None) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise ConfigError("this vault keeps its blobs in S3, and boto3 is not installed "
                              "(pip install 'mailvault[s3]').") from exc
        self.bucket = bucket
        keys: dict[str, Any] = {}
        if credentials is not None:
            keys = {"aws_access_key_id": credentials.access_key_id,
                    "aws_secret_access_key": credentials.secret_access_key}
        self._client: Any = boto3.client(
            "s3", endpoint_url=bucket.endpoint or None, region_name=bucket.region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}), **keys)

    def check(self) -> None:
        """StoreError in one sentence unless the bucket answers and has Object Lock on."""
        from botocore.exceptions import ClientError
        try:
            answer = self._call(f"read the Object Lock configuration of {self.bucket.name}",
                                lambda: self._client.get_object_lock_configuration(
                                    Bucket=self.bucket.name))
        except StoreError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ClientError)
                    and _code(cause) == "ObjectLockConfigurationNotFoundError"):
                raise
            answer = {}
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise StoreError(f"the bucket {self.bucket.name} does not have Object Lock "
                             "enabled (create it with Object Lock on).")

    def put(self, key: str, path: Path, lock: Lock) -> None:
        """Upload a file as an object with its lock (retention and legal hold)."""
        extra: dict[str, Any] = {
            "ObjectLockLegalHoldStatus": "ON" if lock.legal_hold else "OFF"}
        if lock.retain_until is not None:
            extra["ObjectLockMode"] = self.bucket.lock_mode.upper()
            extra["ObjectLockRetainUntilDate"] = datetime.fromtimestamp(lock.retain_until, UTC)
        with open(path, "rb") as body:
            self._call(f"upload {key}", lambda: self._client.put_object(
                Bucket=self.bucket.name, Key=key, Body=body, ChecksumAlgorithm="SHA256",
                **extra))

    def size(self, key: str) -> int | None:
        """The object's length, or None when the bucket has no such object."""
        from botocore.exceptions import ClientError
        try:
            head = self._client.head_object(Bucket=self.bucket.name, Key=key)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _store_error(exc, f"look up {key}") from exc
        return int(head["ContentLength"])

    def read(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (one ranged GET)."""
        answer = self._call(f"read {key}", lambda: self._client.get_object(
            Bucket=self.bucket.name, Key=key, Range=f"bytes={offset}-{offset + length - 1}"))
        return bytes(answer["Body"].read())

    def pieces(self, key: str, size: int = 1 << 20) -> Iterator[bytes]:
        """The whole object, in pieces of ``size`` bytes (one streamed GET); a connection
        lost part way is StoreError in one sentence."""
        from botocore.exceptions import BotoCoreError

        answer = self._call(f"read {key}", lambda: self._client.get_object(
            Bucket=self.bucket.name, Key=key))
        body = answer["Body"]
        try:
            yield from body.iter_chunks(size)
        except (BotoCoreError, OSError) as exc:
            raise StoreError(f"the bucket {self.bucket.name} stopped sending {key}: "
                             f"{exc}.") from exc
        finally:
            body.close()

    def lock(self, key: str) -> Lock:
        """The object's lock as the bucket reports it."""
        head = self._call(f"look up {key}", lambda: self._client.head_object(
            Bucket=self.bucket.name, Key=key))
        until = head.get("ObjectLockRetainUntilDate")
        return Lock(int(until.timestamp()) if until is not None else None,
                    head.get("ObjectLockLegalHoldStatus") == "ON")

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Place or lift the object's legal hold."""
        self._call(f"set the legal hold of {key}", lambda: self._client.put_object_legal_hold(
            Bucket=self.bucket.name, Key=key, LegalHold={"Status": "ON" if on else "OFF"}))

    def extend(self, key: str, retain_until: int) -> None:
        """Move the object's retain-until date later (a bucket never allows earlier)."""
        self._call(f"extend the retention of {key}", lambda: self._client.put_object_retention(
            Bucket=self.bucket.name, Key=key,
            Retention={"Mode": self.bucket.lock_mode.upper(),
                       "RetainUntilDate": datetime.fromtimestamp(retain_until, UTC)}))

    def delete(self, key: str) -> None:
        """Delete every version of the object; StoreError in one sentence when the bucket
        refuses (a lock that has not passed, a legal hold), before any version is gone."""
        listing = self._call(f"list the versions of {key}", lambda: self._client
                             .list_object_versions(Bucket=self.bucket.name, Prefix=key))
        versions = [v["VersionId"] for group in ("Versions", "DeleteMarkers")
                    for v in listing.get(group, []) if v["Key"] == key]
        for version in versions:
            self._delete_version(key, version)

    def _delete_version(self, key: str, version: str) -> None:
        self._call(f"delete {key}", lambda: self._client.delete_object(
            Bucket=self.bucket.name, Key=key, VersionId=version))

    def _call(self, action: str, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return call()
        except ClientError as exc:
            raise _store_error(exc, action) from exc
        except BotoCoreError as exc:
            raise StoreError(f"the bucket {self.bucket.name} cannot be reached to {action}: "
                             f"{exc}.") from exc


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _store_error(exc: Any, action: str) -> StoreError:
    code = _code(exc)
    if code == "AccessDenied" and action.startswith("delete"):
        return StoreError(f"the bucket refused to {action}: its Object Lock has not passed "
                          "or it is under legal hold.")
    message = exc.response.get("Error", {}).get("Message", "") or code
    return StoreError(f"the bucket refused to {action}: {message.rstrip('.')}.")


class ObjectVolumes(Volumes):
    """A tier's volumes, where a volume the catalog names as an object is read from it."""

    def __init__(self, folder: Path, max_bytes: int, paths: Callable[[int], Path],
                 new_volume_id: Callable[[Path], int], current: int | None,
                 object_of: Callable[[int, bool], str | None], objects: Objects) -> None:
        super().__init__(folder, max_bytes, paths, new_volume_id, current)
        self._object_of = object_of
        self._objects = objects

    def read(self, location: Location) -> bytes:
        """The record at a location: a ranged GET when its volume was uploaded."""
        url = self._object_of(location.volume, False)
        if url is None:
            try:
                return super().read(location)
            except StoreError:
                # Uploaded since this process last looked (its local file is gone)?
                url = self._object_of(location.volume, True)
                if url is None:
                    raise
        data = self._objects.read(self._objects.bucket.key_of(url), location.offset,
                                  location.length)
        if len(data) != location.length:
            raise StoreError(f"the object of volume {location.volume} ends before the record "
                             f"at offset {location.offset}: it was truncated.")
        return data


class ObjectBlobStore(VolumeBlobStore):
    """Local volumes (write, fsync) whose sealed volumes move to Object Lock objects."""

    def __init__(self, keyring: Keyring, volumes: Callable[[str], Volumes],
                 objects: Objects, dictionary: Callable[[int], bytes] | None = None,
                 cached_chunks: int = 8) -> None:
        super().__init__(keyring, volumes, dictionary, cached_chunks)
        self.objects = objects

    def seal_open(self) -> None:
        """Sync and seal the volumes this process appends to, so that they can be uploaded
        (the next write opens a new volume)."""
        for tier in list(self._open):
            volumes = self.volumes(tier)
            volumes.sync()
            volumes.seal()

    def seal_older_than(self, seconds: float) -> None:
        """Seal the volumes this process has appended to for at least ``seconds`` (a
        quiet node's mail must not wait for a volume to fill)."""
        for tier in list(self._open):
            self.volumes(tier).seal_older_than(seconds)

    def upload(self, volume_id: int, path: Path, lock: Lock) -> str:
        """Put a sealed volume file in the bucket with its lock; returns the object's URL.
        The file stays: the caller records the URL in the catalog, then removes it. An object
        already there with the same bytes (a node killed after uploading) is not sent again."""
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        key = self.objects.bucket.key_for(volume_id, digest.hexdigest())
        if self.objects.size(key) != path.stat().st_size:
            self.objects.put(key, path, lock)
        return self.objects.bucket.url(key)


def drop_local(path: Path) -> None:
    """Remove a volume file the bucket now holds (and make the removal durable)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    file_modes.fsync_folder(path.parent)


def environment_credentials() -> Credentials | None:
    """AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, when both are set."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    return Credentials(key, secret) if key and secret else None
