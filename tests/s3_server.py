"""moto's standalone S3 server on 127.0.0.1 for tests: the one S3 stand-in (docs/s3.md).

It runs in a process of its own, on a port the kernel picks (it prints it), and implements
what the store relies on: versioned buckets with Object Lock, retain-until dates and legal
holds on objects, and refusing to delete a locked version. Every test gets a bucket of its
own (``new_bucket``), so tests never see each other's objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

KEYS = {"AWS_ACCESS_KEY_ID": "mailvault-test", "AWS_SECRET_ACCESS_KEY": "mailvault-test",
        "AWS_DEFAULT_REGION": "us-east-1"}
# Prints the port the kernel chose, then serves until its standard input closes (the test
# process ended, however it ended).
_SERVE = """\
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


@dataclass
class MotoServer:
    """A running moto server and its endpoint URL."""

    process: subprocess.Popen[bytes]
    endpoint: str

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])

    def new_bucket(self, lock: bool = True) -> str:
        """A new empty bucket (with Object Lock, unless asked not to)."""
        name = f"mv-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        return name


def start() -> MotoServer:
    """Start the server and wait until it answers HTTP."""
    process = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env={**os.environ, **KEYS})
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise RuntimeError("moto's server did not start (is moto[server] installed?)")
    endpoint = f"http://127.0.0.1:{int(line)}"
    _wait_ready(endpoint, process)
    return MotoServer(process, endpoint)


def stop(server: MotoServer) -> None:
    """End the server (closing its standard input ends it; kill if it lingers)."""
    assert server.process.stdin is not None
    server.process.stdin.close()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    """Ask until the server answers (the port is bound before it prints, so this is quick)."""
    for _attempt in range(200):
        if process.poll() is not None:
            raise RuntimeError("moto's server exited while starting")
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it serves
        except OSError:
            continue
    raise RuntimeError(f"moto's server at {endpoint} never answered")
