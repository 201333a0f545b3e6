"""Shared pytest setup.

Every test runs with one torch thread: the tensors in unit tests are tiny, intra-op
threads bring nothing for them, and on a busy 2-core machine oversubscribed threads
made gradcheck ~30x slower. (Notebook kernels and subprocesses are not affected.)
"""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
