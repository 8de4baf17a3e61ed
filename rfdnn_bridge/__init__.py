"""rfdnn_bridge: the PyTorch bridge (quantizers, estimators, LNE gradient, RF-DNN optimizer). Filled in by later issues."""
