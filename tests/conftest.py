"""Shared test configuration."""
from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Tiny models are latency-bound: one intra-op thread is faster and robust to a busy CPU
    (two xdist workers on two cores). Only acts when the test module imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
