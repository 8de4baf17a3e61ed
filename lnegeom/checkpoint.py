"""Checkpoints of :func:`lnegeom.flow.solve_flow`: atomic, appended, resumable.

A checkpoint is two files:

* ``path`` itself (used exactly as given, no suffix added): a small ``.npz`` archive with
  the last state (``t_last``, ``g_last``), the number of saved times, the flow and the
  method — replaced atomically (written to a temporary file in the same folder, then
  renamed), so a kill at any moment leaves either the previous or the new version;
* ``path + ".history"``: the saved times and metrics as raw float64 records
  ``[t, g.ravel()]``, only ever appended to.  Records beyond the count in ``path`` (a kill
  between the two writes) are ignored and overwritten by the next run.

Saving a time therefore costs O(one metric), not O(the whole history).
:func:`load_checkpoint` reads both back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["FlowCheckpoint", "load_checkpoint", "CheckpointError", "save_npz_atomic"]

#: version of the on-disk layout, stored in ``path``
FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and what to do."""


def _history_path(path: Path) -> Path:
    return path.with_name(path.name + ".history")


def save_npz_atomic(path: Path, **arrays: Any) -> None:
    """``numpy.savez`` to ``path`` (used as given) atomically: a temporary file in the same folder,
    then a rename, so a reader sees the previous file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FlowCheckpoint:
    """Writer of one checkpoint (module docstring).

    ``resume_from=(t0, g0)``: if ``path`` holds a checkpoint whose last state is exactly
    ``(t0, g0)`` (a run resumed from it), its history is kept and extended; otherwise the
    checkpoint is started afresh.  :attr:`resumed` tells which.
    """

    def __init__(self, path: Any, *, flow: str, method: str, resume_from: Optional[tuple[float, np.ndarray]] = None):
        self.path = Path(os.fspath(path))
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"checkpoint={str(self.path)!r}: the folder {str(self.path.parent)!r} does not exist"
            )
        self.flow, self.method = flow, method
        self.count = 0
        self.resumed = False
        if resume_from is not None and self.path.exists():
            try:
                old = load_checkpoint(self.path, history=False)
            except CheckpointError:
                old = None
            t0, g0 = resume_from
            if (old is not None and old["t_last"] == t0 and old["g_last"].shape == g0.shape
                    and np.array_equal(old["g_last"], g0)):
                self.count, self.resumed = int(old["count"]), True
        if not self.resumed:
            _history_path(self.path).write_bytes(b"")

    def append(self, t: float, g: np.ndarray) -> None:
        """Save one time: append its record to the history (after the ``count`` complete records
        there, dropping any partial one), then replace ``path``."""
        g = np.ascontiguousarray(g, dtype=np.float64)
        with open(_history_path(self.path), "ab") as f:
            f.truncate(self.count * (1 + g.size) * 8)
            np.concatenate([[float(t)], g.ravel()]).tofile(f)
        self.count += 1
        save_npz_atomic(self.path, format=FORMAT, t_last=float(t), g_last=g, count=self.count, flow=self.flow,
                      method=self.method)


def load_checkpoint(path: Any, history: bool = True) -> dict[str, Any]:
    """The checkpoint at ``path``: ``t_last``, ``g_last``, ``count``, ``flow``, ``method`` and, with
    ``history``, ``t`` ``[count]`` and ``g`` ``[count, *g_last.shape]`` — the saved times and metrics.

    Resume a run with ``solve_flow(data["g_last"], (data["t_last"], t1), ..., checkpoint=path)``.
    Raises :class:`CheckpointError` naming the file if it is not a readable checkpoint.
    """
    path = Path(os.fspath(path))
    fix = f"delete {str(path)!r} (and {str(_history_path(path))!r}) to start the run again"
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        out = dict(t_last=float(data["t_last"]), g_last=data["g_last"], count=int(data["count"]),
                   flow=str(data["flow"]), method=str(data["method"]))
        if int(data["format"]) != FORMAT:
            raise CheckpointError(
                f"{str(path)!r}: checkpoint format {int(data['format'])}, this version reads {FORMAT}"
            )
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except Exception as err:
        raise CheckpointError(f"{str(path)!r} is not a readable solve_flow checkpoint ({err}); {fix}") from None
    if history:
        size = 1 + out["g_last"].size
        raw = np.fromfile(_history_path(path), dtype=np.float64) if _history_path(path).exists() else np.empty(0)
        if raw.size < out["count"] * size:
            raise CheckpointError(f"{str(_history_path(path))!r} holds {raw.size // size} of the {out['count']} "
                                  f"saved times {str(path)!r} records; {fix}")
        rec = raw[: out["count"] * size].reshape(out["count"], size)
        out["t"] = rec[:, 0].copy()
        out["g"] = rec[:, 1:].reshape((out["count"],) + out["g_last"].shape)
    return out
