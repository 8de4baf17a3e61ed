"""rfdnn_bridge: the PyTorch bridge of lnegeom — quantized training with the LNE metric and the
discrete Ricci flow of Chen et al., *Learning Discretized Neural Networks under Ricci Flow*
(arXiv 2302.03390), and the straight-through-estimator family it is compared with.

The front door (every name below is also importable from its module)::

    from rfdnn_bridge import RFDNN, lne_param_groups, quantize_model, rfdnn_closure

    model = quantize_model(net, weights="clipped")          # latent weights, sign forward
    opt = RFDNN(lne_param_groups(model, mode="weak"), lr=0.01, momentum=0.9)
    opt.step(closure)                                        # any torch.optim training loop

* Optimizers: :class:`RFDNN` (SGD on the LNE natural gradient, with ``flow=True`` the
  paper's Algorithm 2; :func:`rfdnn_closure` builds the closure it needs),
  :class:`LNEPreconditioner` (the same transform in front of any ``torch.optim``
  optimizer), :func:`lne_param_groups`, and :class:`Bop` (the latent-free baseline).
* The transform itself: :func:`lne_transform` (docs/lne_grad.md).
* Layers: :func:`quantize_model`, :class:`QuantLinear`, :class:`QuantConv2d`,
  :func:`model_summary` (docs/layers.md).
* Estimators: :func:`get_estimator`, :func:`list_estimators` (docs/estimators/index.md).

The mathematics and its conventions: docs/conventions.md; the command line: ``rfdnn``.
"""

from .bop import Bop
from .estimators import get_estimator, list_estimators
from .layers import QuantConv2d, QuantLinear, model_summary, quantize_model
from .lne_grad import lne_transform
from .optim import RFDNN, LNEPreconditioner, lne_param_groups, rfdnn_closure

__all__ = [
    "Bop",
    "LNEPreconditioner",
    "QuantConv2d",
    "QuantLinear",
    "RFDNN",
    "get_estimator",
    "lne_param_groups",
    "lne_transform",
    "list_estimators",
    "model_summary",
    "quantize_model",
    "rfdnn_closure",
]
