"""Fixtures shared by the TEST DOUBLE's loopback tests (see loopback_lab.py)."""

import os
import time

import pytest
from loopback_lab import NIGHT, build_world, ip, running_double


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("binds port 25 on loopback: needs root")
    with build_world(tmp_path_factory.mktemp("world")) as lab:
        yield lab


@pytest.fixture(scope="session")
def night(world):
    """A second double whose test clock starts one minute before midnight and runs 30x (midnight in 2 s)."""
    config = NIGHT % {"dns": world["bind"].address, "listen": ip(3), "injector": ip(2), "warm": ip(14),
                      "cold": ip(15)}
    with running_double(world["base"] / "night", config, world["bind"],
                        {"start": "2026-11-29T23:59:00+00:00", "speed": 30}) as double:
        yield dict(double, started=time.monotonic())
