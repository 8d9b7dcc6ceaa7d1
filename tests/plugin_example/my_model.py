"""A model defined outside this repository's packages, registered through the public API (README, "Adding your
own model"): ``bench --include tests/plugin_example/my_model.py eval my_tiny egomcq --data DIR``.

The folder of an ``--include`` file is put on ``sys.path`` (``henasy.core.plugins``), so the network is imported
from its sibling module ``tiny_nets.py`` as it would be from your own package.
"""

from __future__ import annotations

from typing import Any

from tiny_nets import MyTinyModel

from henasy.core.catalog import MODELS


@MODELS.register(
    "my_tiny", "MyTinyModel from tests/plugin_example: mean-pooled RGB + bag of words (untrained)"
)
def my_tiny(**arch: Any) -> MyTinyModel:
    """The registered factory: ``arch`` are ``MyTinyModel``'s keyword arguments (``--set model.embed_dim=32``)."""
    return MyTinyModel(**arch)
