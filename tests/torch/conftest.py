"""Shared fixtures of the torch tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every torch test runs on one intra-op thread: results and speed then do not depend on
    how busy the (shared, 2-core) machine is, and no test waits on threads spinning elsewhere."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
