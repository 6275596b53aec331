"""Fixtures shared by the tests; the helpers they import live in modules of their own (probability_inputs.py,
optimality.py, devices.py, benchmark_modules.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def threads():
    """Restores torch's thread count after a test changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread(threads):
    """One intra-op thread: the fits are tiny, and two threads on a busy two-core machine run them 20x slower."""
    torch.set_num_threads(1)
