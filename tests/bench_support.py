"""Fixtures shared by the ``test_bench_*`` modules (imported there; not a test module itself).

``one_thread`` (autouse in every module that imports it): torch intra-op threads set to 1 for the module. The clip loader's resize runs in the main
process when ``num_workers=0`` (as in tests), and on the shared 2-core machine two threads per small op are
several times slower than one; DataLoader workers use one thread anyway.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
