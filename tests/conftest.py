"""Shared pytest setup.

Every test runs with one torch thread: the tensors in unit tests are tiny, intra-op
threads bring nothing for them, and on a busy 2-core machine oversubscribed threads
made gradcheck ~30x slower. (Notebook kernels and subprocesses are not affected.)
"""
import os

import pytest
import torch
from hypothesis import settings


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# Property tests draw the same examples on every run, so a CI result is reproducible;
# HYPOTHESIS_PROFILE=explore searches new random examples.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` need a GPU; elsewhere they are skipped with the reason."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here); on a GPU machine run bash tests/gpu_check.sh")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
