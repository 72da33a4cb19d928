"""Shared fixtures: one in-process moto server (patched) for the session, function pools running
tests/fake_function.py, boto3 clients pointed at moto."""

import dataclasses
import os
import sys
import time
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(LOCAL))

from kbstack import limits, moto_patches  # noqa: E402
from kbstack.function_host import FunctionConfig, FunctionHost  # noqa: E402
from kbstack.moto_server import MotoServer  # noqa: E402

FAKE_FUNCTION = Path(__file__).resolve().parent / "fake_function.py"


@pytest.fixture(scope="session")
def moto():
    server = MotoServer("127.0.0.1", 0).start()
    host = FunctionHost()
    moto_patches.install(host)
    server.host_registry = host
    yield server
    host.close()
    server.stop()


@pytest.fixture
def client(moto):
    import boto3

    cache = {}

    def make(service):
        if service not in cache:
            cache[service] = boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1",
                                          aws_access_key_id="test", aws_secret_access_key="test")
        return cache[service]

    return make


@pytest.fixture
def set_limits(moto):
    """set_limits(sfn_history_events=300, ...): AWS limits for this test (AWS's values again after it)."""
    saved = limits.current()
    yield lambda **values: limits.configure(dataclasses.replace(saved, **values))
    limits.configure(saved)


@pytest.fixture
def make_pool(tmp_path, moto):
    """make_pool(name, timeout=3, workers=1, env=None) -> FunctionPool (registered with the patched moto)."""
    pools = []

    def make(name, timeout=3.0, workers=1, env=None):
        environment = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
        environment.update(env or {})
        config = FunctionConfig(
            name=name, arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
            command=[sys.executable, str(FAKE_FUNCTION)], environment=environment, timeout=timeout,
            workers=workers, log_path=str(tmp_path / f"{name}.log"))
        pool = moto.host_registry.add(config)
        pool.start()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
        moto.host_registry.pools.pop(pool.config.name, None)


def wait_for(predicate, timeout=10.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
