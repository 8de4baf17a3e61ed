"""benchmarks/gpu.sh: the GPU check skips cleanly (exit 0, one line) where no CUDA device is present."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the script would run")
def test_gpu_script_skips_cleanly_without_cuda():
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gpu.sh: no CUDA device (torch.cuda.is_available() is False): skipped"
