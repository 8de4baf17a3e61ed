"""Array-namespace helpers shared by the numpy and torch paths.

One formula is written once against the array API (``array-api-compat``);
numpy arrays and torch tensors both pass through it.  ``einsum`` and
``linalg.eigvalsh`` are not in the array-API standard but both namespaces
wrapped by ``array-api-compat`` provide them with the same signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np
from array_api_compat import array_namespace, is_torch_array

if TYPE_CHECKING:  # lnegeom imports torch only where a torch path runs
    import torch

__all__ = ["Array", "array_namespace", "is_torch_array", "to_numpy"]

#: What the array-API code takes and returns: a numpy array or a torch tensor (CPU or GPU).
Array = Union[np.ndarray, "torch.Tensor"]


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array (detached and moved to CPU for torch)."""
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
