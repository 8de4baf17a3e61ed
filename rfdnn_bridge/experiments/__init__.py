"""Training experiments: data without downloads, reference models, resumable runs, summaries.

* :mod:`.data` — scikit-learn's digits, MNIST-1D generated procedurally, CIFAR-10 from the
  user's files (restricted unpickler), batch iteration and augmentation;
* :mod:`.models` — MLP, a small CNN (2-D and 1-D), CIFAR ResNets;
* :mod:`.train` — one (method, seed) run, resumable bit for bit on CPU;
* :mod:`.report` — mean ± std, paired differences, spread ratio, plots.

The command line is ``rfdnn compare`` (:mod:`rfdnn_bridge.cli`).
"""
