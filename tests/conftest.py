"""Test configuration: hypothesis profiles and shared fixtures.

Profiles (select with ``HYPOTHESIS_PROFILE=<name>``; ``CI=true`` picks ``ci``):

* ``ci``      — few examples, no deadline: the whole suite fits the CI budget;
* ``dev``     — the default for local runs;
* ``nightly`` — many examples, for a thorough run (``HYPOTHESIS_PROFILE=nightly pytest``).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=12, derandomize=True, **_common)
settings.register_profile("dev", max_examples=30, **_common)
settings.register_profile("nightly", max_examples=500, **_common)

_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker: with -n 2 on 2 cores, torch's default of one thread per
    # core oversubscribes the machine and small training loops slow down by an order of magnitude
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Skip ``@pytest.mark.gpu`` tests cleanly when no CUDA device is present."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
