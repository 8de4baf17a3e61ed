r"""A slow, literal, dense reference implementation of one RF-DNN step (tests only).

This is an independent transcription of the discrete Ricci flow inside a network
(docs/math.md §4, the paper's Algorithm 2) as specified for ``rfdnn_bridge.optim.RFDNN``.
It deliberately does everything the naive way — n×n matrices, python loops over
group rows, dense ``torch.linalg.solve``, ``torch.func.functional_call`` for every
pass — so that it shares no code with the fast operator (it does not import
``rfdnn_bridge.optim``).  Only for tiny models, in float64.

One step (flow on), for every parameter p of an ``lne=True`` group, τ fixed,
``group="tensor"`` (one row: p flattened) or ``"channel"`` (row i: p[i] flattened),
everything per row of length n:

1. main pass on the untranslated batch → G0;
2. shifts ((k1, k2), (j1, j2)) → translations (k1, 0), (k2, 0), (0, j1), (0, j2);
   a translation (0, 0) reuses G0; G_a = ∂L(translate(x, a))/∂p;
3. tentative weights w_a = w − lr_t G_a, t_a = tanh(τ w_a);
4. state t_prev = t_{k1} of the previous step (tanh(τ w) at the first step);
5. g_a = I − t_a t_aᵀ, g_prev = I − t_prev t_prevᵀ, g_new = g_{k1};
   proxy "paper": P = (g_{k1} − g_{k2})/(k1 − k2) − (g_{j1} − g_{j2})/(j1 − j2);
   proxy "ricci": P = −2 flow_eta Ric(g_prev) (exact Ricci tensor in the w coordinates);
   R = (g_new − g_prev) − P, N = ‖R‖²_F, N_i = ‖R[i, :]‖²;
6. gate: "group" 1[N ≤ eps]; "element" 1[N_i ≤ eps/n]; "off" 1;
7. ∇N: "none" 0; "direct" through t_a(w) with G_a constant; "double" also through G_a(w);
   the regulariser differentiated is the sum of N over every row of every lne parameter
   (``regulariser="total"``; ``"own"`` differentiates, for each parameter, only its own
   N — differs from "total" only for ``n_grad="double"``);
8. v = G0 + α ∇N; u = g(w)⁻¹ v (exact: dense solve; weak: (I + t tᵀ) v), t = tanh(τ w)
   at the current weights; u ← u · pass;
9. d = u + wd·w, torch.optim.SGD momentum / dampening / nesterov, w ← w − lr d;
10. t_prev ← t_{k1}.

``lne=False`` groups: plain SGD on G0.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from lnegeom.lne import LNEMetric

DEFAULTS = dict(
    lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
    mode="exact", tau=1.0, group="tensor", flow=True, shifts=((1, 0), (1, 0)),
    alpha=0.0, eps=float("inf"), gate="group", proxy="paper", flow_eta=0.01,
    n_grad="direct", tentative_lr=None, lne=True,
)


def literal_translate(x: torch.Tensor, shift) -> torch.Tensor:
    """out[..., r, c] = x[..., r − dk, c − dj] where in range, else 0 (element by element)."""
    dk, dj = int(shift[0]), int(shift[1])
    out = torch.zeros_like(x)
    H, W = x.shape[-2], x.shape[-1]
    for r in range(H):
        rs = r - dk
        if not 0 <= rs < H:
            continue
        for c in range(W):
            cs = c - dj
            if 0 <= cs < W:
                out[..., r, c] = x[..., rs, cs]
    return out


def _rows(p: torch.Tensor, group: str) -> torch.Tensor:
    if group == "tensor":
        return p.reshape(1, -1)
    if group == "channel":
        return p.reshape(p.shape[0], -1)
    raise ValueError(group)


def _dense_g(t: torch.Tensor) -> torch.Tensor:
    """Dense (n×n) g = I − t tᵀ (differentiable in t)."""
    return torch.eye(t.shape[0], dtype=t.dtype) - torch.outer(t, t)


class LiteralRFDNN:
    """Dense reference of the RF-DNN step.

    Parameters
    ----------
    model : nn.Module (its parameters are read and written in place by :meth:`step`)
    loss_fn, x, y : the batch and the loss
    groups : list of dicts ``{"params": [names], ...options}``; options not given take
        the keyword defaults (``DEFAULTS`` overridden by ``**defaults``).
    """

    def __init__(self, model, loss_fn, x, y, groups, regulariser="total", **defaults):
        self.model = model
        self.loss_fn = loss_fn
        self.x = x
        self.y = y
        base = dict(DEFAULTS)
        base.update(defaults)
        self.groups = []
        for g in groups:
            opts = dict(base)
            opts.update(g)
            opts["params"] = list(g["params"])
            self.groups.append(opts)
        self.regulariser = regulariser
        self.t_prev: dict[str, torch.Tensor] = {}
        self.buf: dict[str, torch.Tensor] = {}
        self.diagnostics: dict[str, dict] = {}
        self.calls = 0
        self.steps = 0

    # ------------------------------------------------------------------ helpers
    def _param_dict(self):
        return dict(self.model.named_parameters())

    def _grads(self, W: dict, shift, create_graph: bool):
        """Gradients of the loss on translate(x, shift) w.r.t. every parameter in W."""
        self.calls += 1
        xs = literal_translate(self.x, shift)
        loss = self.loss_fn(functional_call(self.model, W, (xs,)), self.y)
        names = list(W)
        gs = torch.autograd.grad(loss, [W[k] for k in names], create_graph=create_graph,
                                 allow_unused=True)
        out = {}
        for k, gk in zip(names, gs):
            out[k] = torch.zeros_like(W[k]) if gk is None else gk
        return loss, out

    @staticmethod
    def _translations(shifts):
        (k1, k2), (j1, j2) = shifts
        return [("k1", (k1, 0)), ("k2", (k2, 0)), ("j1", (0, j1)), ("j2", (0, j2))]

    # ------------------------------------------------------------------ step
    def step(self):
        params = self._param_dict()
        names = list(params)
        lne_groups = [g for g in self.groups if g["lne"] and g["flow"]]
        # one set of shifts / n_grad for the whole model (these are the same in every
        # group in the tests); take them from the first lne group
        ref = lne_groups[0] if lne_groups else self.groups[0]
        shifts = ref["shifts"]
        n_grad = ref["n_grad"]
        create_graph = n_grad == "double"

        W = {k: params[k].detach().clone().requires_grad_(True) for k in names}
        loss0, G0 = self._grads(W, (0, 0), create_graph)
        G = {}
        for label, a in self._translations(shifts):
            if tuple(a) == (0, 0):
                G[label] = G0
            else:
                _, G[label] = self._grads(W, a, create_graph)

        # ---- N for every lne parameter and row, as a function of W
        N_rows: dict[str, list[torch.Tensor]] = {}
        N_elem: dict[str, list[torch.Tensor]] = {}
        t_k1_new: dict[str, torch.Tensor] = {}
        for g in lne_groups:
            tau = float(g["tau"])
            lr_t = g["tentative_lr"] if g["tentative_lr"] is not None else g["lr"]
            (k1, k2), (j1, j2) = g["shifts"]
            for name in g["params"]:
                w = W[name]
                if name not in self.t_prev:
                    self.t_prev[name] = torch.tanh(tau * _rows(w.detach(), g["group"])).clone()
                tprev_rows = self.t_prev[name]
                t_a = {}
                for label in ("k1", "k2", "j1", "j2"):
                    Ga = G[label][name]
                    if n_grad != "double":
                        Ga = Ga.detach()
                    wa = w - lr_t * Ga
                    if n_grad == "none":
                        wa = wa.detach()
                    t_a[label] = torch.tanh(tau * _rows(wa, g["group"]))
                t_k1_new[name] = t_a["k1"].detach().clone()
                nr, ne = [], []
                for r in range(tprev_rows.shape[0]):
                    n = tprev_rows.shape[1]
                    ga = {lab: _dense_g(t_a[lab][r]) for lab in t_a}
                    g_prev = _dense_g(tprev_rows[r])
                    g_new = ga["k1"]
                    if g["proxy"] == "paper":
                        P = (ga["k1"] - ga["k2"]) / (k1 - k2) - (ga["j1"] - ga["j2"]) / (j1 - j2)
                    elif g["proxy"] == "ricci":
                        w_prev = torch.atanh(tprev_rows[r]) / tau
                        Ric = LNEMetric(tau).ricci_matrix(w_prev)
                        P = -2.0 * g["flow_eta"] * Ric
                    else:
                        raise ValueError(g["proxy"])
                    Rres = (g_new - g_prev) - P
                    Ni = torch.stack([torch.sum(Rres[i, :] ** 2) for i in range(n)])
                    nr.append(torch.sum(Rres ** 2))
                    ne.append(Ni)
                N_rows[name] = nr
                N_elem[name] = ne

        # ---- ∇N
        gradN: dict[str, torch.Tensor] = {}
        lne_names = [name for g in lne_groups for name in g["params"]]
        if n_grad == "none" or not lne_names:
            for name in lne_names:
                gradN[name] = torch.zeros_like(W[name])
        elif self.regulariser == "total":
            total = sum(sum(N_rows[name]) for name in lne_names)
            gs = torch.autograd.grad(total, [W[k] for k in lne_names], allow_unused=True)
            for name, gk in zip(lne_names, gs):
                gradN[name] = torch.zeros_like(W[name]) if gk is None else gk.detach()
        elif self.regulariser == "own":
            for name in lne_names:
                (gk,) = torch.autograd.grad(sum(N_rows[name]), [W[name]], retain_graph=True,
                                            allow_unused=True)
                gradN[name] = torch.zeros_like(W[name]) if gk is None else gk.detach()
        else:
            raise ValueError(self.regulariser)

        # ---- updates
        with torch.no_grad():
            self.diagnostics = {}
            for g in self.groups:
                for name in g["params"]:
                    p = params[name]
                    w = p.detach().clone()
                    g0 = G0[name].detach().clone()
                    if g["lne"] and g["flow"]:
                        tau = float(g["tau"])
                        v = g0 + g["alpha"] * gradN[name]
                        v_rows = _rows(v, g["group"])
                        w_rows = _rows(w, g["group"])
                        nrows, n = v_rows.shape
                        u_rows = torch.zeros_like(v_rows)
                        pass_rows = torch.zeros_like(v_rows)
                        Nvals, svals, gate_frac = [], [], []
                        for r in range(nrows):
                            t = torch.tanh(tau * w_rows[r])
                            gm = _dense_g(t)
                            if g["mode"] == "exact":
                                u = torch.linalg.solve(gm, v_rows[r])
                            elif g["mode"] == "weak":
                                u = (torch.eye(n, dtype=t.dtype) + torch.outer(t, t)) @ v_rows[r]
                            else:
                                raise ValueError(g["mode"])
                            Nr = N_rows[name][r].detach()
                            Ni = N_elem[name][r].detach()
                            if g["gate"] == "group":
                                ps = torch.full((n,), 1.0 if float(Nr) <= g["eps"] else 0.0,
                                                dtype=t.dtype)
                            elif g["gate"] == "element":
                                ps = torch.tensor([1.0 if float(Ni[i]) <= g["eps"] / n else 0.0
                                                   for i in range(n)], dtype=t.dtype)
                            elif g["gate"] == "off":
                                ps = torch.ones(n, dtype=t.dtype)
                            else:
                                raise ValueError(g["gate"])
                            u_rows[r] = u * ps
                            pass_rows[r] = ps
                            Nvals.append(float(Nr))
                            svals.append(float(torch.sum(t * t)))
                            gate_frac.append(float(ps.mean()))
                        d = u_rows.reshape(w.shape)
                        self.diagnostics[name] = dict(
                            N=torch.tensor(Nvals, dtype=torch.float64),
                            N_elem=torch.stack([Ni.detach() for Ni in N_elem[name]]),
                            s=torch.tensor(svals, dtype=torch.float64),
                            gate=torch.tensor(gate_frac, dtype=torch.float64),
                            pass_mask=pass_rows.reshape(w.shape).clone(),
                        )
                    else:
                        d = g0
                    if g["weight_decay"] != 0:
                        d = d + g["weight_decay"] * w
                    mom = g["momentum"]
                    if mom != 0:
                        if name not in self.buf:
                            buf = d.clone()
                        else:
                            buf = mom * self.buf[name] + (1.0 - g["dampening"]) * d
                        self.buf[name] = buf
                        d = d + mom * buf if g["nesterov"] else buf
                    p.copy_(w - g["lr"] * d)
            for name, tk in t_k1_new.items():
                self.t_prev[name] = tk
        self.steps += 1
        return loss0.detach()
