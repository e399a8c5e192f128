# SPDX-License-Identifier: Apache-2.0
import os

import numpy as np
import pytest
import torch

# Two cores: keep torch from oversubscribing when tests run next to DDS threads.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
