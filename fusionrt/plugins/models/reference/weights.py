"""Shipped weights as ``.npz``: the network's state dict plus its config (imports torch).

``.npz`` rather than a pickle-based ``.pt``: loading it cannot run code, and numpy reads it
without torch (the model card's parameter count comes from it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from fusionrt.plugins.models.reference.network import (
    NetworkConfig,
    ReferenceExportNetwork,
    ReferenceNetwork,
)

CONFIG_KEY = "__network_config__"


def save_weights(network: ReferenceNetwork, path: Path) -> None:
    """Write ``network``'s state dict and config to ``path`` (.npz)."""
    arrays = {k: v.detach().cpu().numpy() for k, v in network.state_dict().items()}
    config = np.frombuffer(json.dumps(network.config.to_dict()).encode(), np.uint8)
    arrays[CONFIG_KEY] = config
    np.savez(path, **arrays)


def load_network(path: Path) -> ReferenceNetwork:
    """The batched network stored in ``path``, in eval mode."""
    with np.load(path) as z:
        config = NetworkConfig(**json.loads(z[CONFIG_KEY].tobytes().decode()))
        state = {k: torch.from_numpy(z[k].copy()) for k in z.files if k != CONFIG_KEY}
    network = ReferenceNetwork(config)
    network.load_state_dict(state)
    return network.eval()


def load_export_network(path: Path) -> ReferenceExportNetwork:
    """The unbatched (runtime) network stored in ``path``, in eval mode."""
    return ReferenceExportNetwork(load_network(path)).eval()
