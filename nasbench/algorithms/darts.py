"""BNAS-v2: differentiable broad NAS with the confident learning rate (CLR).

Ding et al., "BNAS-v2" (arXiv 2009.08886), sections III-B/C; reference
``BNASv2CLR/train_search_b_confidence.py`` and ``architect_confidence.py``,
``BNASv2PC/train_search_b.py`` (METHODS.md section 4.3); second-order DARTS
after Liu et al., "DARTS" (arXiv 1806.09055) section 2.3 and ``cnn/architect.py``.
Each step:

1. **architecture step** (from ``arch_start_epoch`` on): one batch of the
   architecture split (the ``val`` part of the training set; the algorithm
   asks for it in :meth:`BNASv2.train_loader`) and one Adam step on the
   architecture parameters only. Its gradient is

   * first order (``unrolled: false``): ``grad_alpha L_val(w, alpha)``, one
     forward/backward through the supernet. With CLR the Adam learning rate is
     ``arch_lr * ((epoch + 1) / E) ** power`` (E = ``confidence_epochs``,
     default the run's epochs), which damps early architecture updates, when
     the weights are still poor and parameter-free operations would win;
   * second order (``unrolled: true``, :meth:`BNASv2.unrolled_arch_grads`):
     ``grad_alpha L_val(w', alpha)`` at the weights after one look-ahead step of
     the trainer's SGD on the training batch,
     ``w' = w - xi (m * buf + grad_w L_train(w, alpha) + wd * w)`` (``xi`` the
     optimizer's current lr, ``buf`` its momentum buffer, ``wd`` its weight
     decay; Nesterov and dampening as ``torch.optim.SGD`` would apply them;
     no gradient clipping, as in DARTS), i.e.
     ``grad_alpha L_val(w', alpha) - xi * H grad_w' L_val(w', alpha)`` with the
     mixed second derivative ``H = grad^2_{alpha, w} L_train(w, alpha)``
     applied by central finite differences at ``w +- eps * v``,
     ``v = grad_w' L_val`` and ``eps = 0.01 / ||v||`` (DARTS eq. 8; with
     Nesterov or per-group learning rates the step's exact derivative is
     used, see :meth:`BNASv2.unrolled_arch_grads`). Four
     forward/backward passes instead of one, with no copy of the network:
     every pass is a ``torch.func.functional_call`` on tensors standing in
     for the weights, and none of them changes the module's weights, gradients
     or BN running statistics. With CLR the **loss** ``L_val(w', alpha)`` is
     multiplied by the confidence and the Adam learning rate stays ``arch_lr``,
     as the reference does in its second-order path. That is a different
     thing from the first-order learning-rate form: it multiplies the whole
     hypergradient by the confidence ``c``, and Adam is invariant to a constant
     gradient scale (its update is ``m / sqrt(v)``), so within an epoch,
     where ``c`` is constant, the damping is largely undone. What remains
     is (a) Adam's L2 term ``arch_weight_decay * alpha``, which is not scaled and so
     dominates a small ``c * grad`` (early epochs pull alpha towards 0 harder), (b) ``eps``,
     and (c) the second moment (beta2 = 0.999, a memory of about 1,000 steps)
     still holding the smaller gradients of earlier epochs while ``c`` grows,
     which makes steps somewhat larger than ``arch_lr``, not smaller. In
     short, this form barely damps early updates (METHODS.md 4.7).

   The weight gradients of this step are discarded. Under DDP every gradient
   the second-order step needs is the global-batch one: the training and
   validation weight gradients and the final alpha gradient are averaged
   over ranks, so every rank takes the same Adam step (the first-order step
   gets the same from DDP's all-reduce).
2. **weight step**: the usual supervised forward/backward on the training
   batch; the trainer then clips (``train.clip_grad``, 5 in the reference) and
   takes the SGD step. Architecture parameters are not in the SGD optimizer
   (:func:`nasbench.engine.trainer.build_optimizer` leaves out
   ``module.arch_parameters()``).

The supernet is any DARTS-family one (``space.family == "darts"``): BNAS-v2's
broad network, or the NAS-Bench-201 cell supernet (``space.type:
nas_bench_201_darts``, plain DARTS / PC-DARTS on a benchmarked cell space). It
provides ``arch_parameters()``, ``parameter_free_shares()`` (logged every
step) and ``genotype()`` or ``found_arch()``; at the end of every epoch the
argmax architecture and those shares are appended to :attr:`BNASv2.arch_history`
(saved in the checkpoint, read by ``tools/darts_trajectory.py``; nothing in
training reads it).

Partial channels and edge normalisation (BNAS-v2 PC) are a property of the
supernet (``space.kwargs.partial``); this algorithm drives both variants, and
with ``confidence: false`` it is plain DARTS (first or second order) on the
broad network.
"""
from __future__ import annotations

import math

import torch
from torch.func import functional_call

from ..engine import dist as D
from ..errors import ConfigError
from ..registry import ALGORITHMS, Key
from .base import SupernetAlgorithm


@ALGORITHMS.register("bnas_v2")
class BNASv2(SupernetAlgorithm):
    """Alternating architecture (Adam, CLR) and weight (trainer's SGD) steps on a DARTS supernet.

    Args:
        space: a space of family ``"darts"`` (its supernet has ``arch_parameters()`` and ``genotype()``).
        arch_lr: Adam learning rate of the architecture parameters (3e-4 CLR, 6e-4 PC).
        arch_weight_decay: Adam weight decay (1e-3).
        confidence: bool, use the confident learning rate.
        confidence_power: exponent of the confidence (2).
        confidence_epochs: ``E`` of the confidence; None = the run's epochs (50 in the paper).
        arch_start_epoch: first epoch with architecture steps (0 CLR; 15 PC on CIFAR-10; 35 on ImageNet).
        unrolled: second-order DARTS (module doc); needs the trainer's SGD as ``ctx.optimizer``.
        arch_clip_grad: None (off) or the maximum L2 norm of the architecture gradient, all
            architecture parameters together, clipped before the Adam step (5 in the BNAS-v2
            ImageNet search, ``BNASv2PC/train_search_imagenet_b.py``; under DDP applied after the
            gradient is averaged, so every rank clips the same gradient).

    Raises:
        ConfigError: another space family or a non-positive ``arch_lr``.
    """

    KEYS = {
        "arch_lr": Key(3e-4, "Adam learning rate of the architecture parameters", float, (0, None)),
        "arch_weight_decay": Key(1e-3, "Adam weight decay of the architecture parameters", float, (0, None)),
        "confidence": Key(True, "confident learning rate (CLR) on the architecture steps", bool),
        "confidence_power": Key(2.0, "exponent of the confidence ((epoch + 1) / E) ** power", float, (0, None)),
        "confidence_epochs": Key(None, "E of the confidence (null = the run's epochs)", float, (1, None),
                                 unit="epochs"),
        "arch_start_epoch": Key(0, "first epoch with architecture steps", int, (0, None), unit="epochs"),
        "unrolled": Key(False, "second-order (unrolled) DARTS architecture gradient (about 2x the step time)", bool),
        "arch_clip_grad": Key(None, "max L2 norm of the architecture gradient before the Adam step (null = off)",
                              float, (0, None)),
    }
    eval_sides = ("left",)
    default_evaluator = "genotype"
    #: second order: ``r`` of the finite-difference step ``eps = r / ||v||`` (DARTS' 0.01)
    unrolled_r = 0.01

    def __init__(self, space, seed=0, arch_lr=3e-4, arch_weight_decay=1e-3, confidence=True,
                 confidence_power=2.0, confidence_epochs=None, arch_start_epoch=0, unrolled=False,
                 arch_clip_grad=None):
        if space.family != "darts":
            raise ConfigError(f"algorithm bnas_v2 needs a DARTS cell space (e.g. bnas_v2), got {space.name}")
        if not float(arch_lr) > 0:
            raise ConfigError(f"algorithm.arch_lr must be positive, got {arch_lr}")
        super().__init__(space, seed=seed)
        self.arch_lr, self.arch_weight_decay = float(arch_lr), float(arch_weight_decay)
        self.confidence, self.confidence_power = bool(confidence), float(confidence_power)
        self.confidence_epochs = None if confidence_epochs is None else float(confidence_epochs)
        self.arch_start_epoch = int(arch_start_epoch)
        self.unrolled = bool(unrolled)
        self.arch_clip_grad = None if arch_clip_grad is None else float(arch_clip_grad)
        self.arch_loader = None
        self._arch_iter, self._arch_next = None, None
        self.arch_optimizer = None
        self._pending_state = None
        #: per epoch end: ``{"epoch", "step", "arch" (genes), pfree shares}`` (:meth:`_record_epoch`)
        self.arch_history = []

    # -- pipeline and trainer hooks ---------------------------------------------
    def train_loader(self, make_loader):
        """The weights train on the ``train`` split; the architecture steps on the ``val`` split
        (:attr:`arch_loader`, loader seed offset 104729)."""
        self.arch_loader = make_loader("val", True, seed_offset=104729)
        return make_loader("train", True)

    def setup(self, module, train_cfg) -> None:
        """Build the loss and the Adam optimizer of ``module.arch_parameters()`` (reference betas (0.5, 0.999))."""
        super().setup(module, train_cfg)
        self._arch_adam(module)

    def _arch_adam(self, module) -> None:
        self.arch_optimizer = torch.optim.Adam(module.arch_parameters(), lr=self.arch_lr, betas=(0.5, 0.999),
                                               weight_decay=self.arch_weight_decay)
        if self._pending_state is not None:
            self.arch_optimizer.load_state_dict(self._pending_state)
            self._pending_state = None

    def confidence_factor(self, epoch: int, total_epochs: float) -> float:
        """``((epoch + 1) / E) ** power`` capped at 1, or 1 without CLR (BNAS-v2 eq. 9)."""
        if not self.confidence:
            return 1.0
        e = max(self.confidence_epochs or total_epochs, 1)
        return min(1.0, ((epoch + 1) / e) ** self.confidence_power)

    def _arch_batch(self, step: int, device):
        """Batch ``step mod len`` of architecture epoch ``step // len`` (deterministic, so resume is exact).

        Consecutive steps reuse one epoch iterator; a jump (resume) starts a new one there.
        """
        n = len(self.arch_loader)
        epoch, i = divmod(int(step), n)
        if self._arch_iter is None or self._arch_next != (epoch, i):
            self._arch_iter = self.arch_loader.epoch(epoch, start=i)
        x, y = next(self._arch_iter)
        self._arch_next = (epoch, i + 1) if i + 1 < n else (epoch + 1, 0)
        if i + 1 == n:
            self._arch_iter = None
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def train_step(self, ctx, batch) -> dict:
        """One architecture step (see module doc), then the weight forward/backward.

        ``batch`` = ``(images [b, 3, H, W], targets [b])``. Returns ``loss`` (weights),
        ``arch_loss``/``arch_lr`` (when an architecture step ran; second order:
        ``arch_loss`` is ``L_val(w', alpha)`` before the confidence scaling, and
        ``arch_confidence`` the factor on it) and the mean
        softmax weight on parameter-free operations per cell type
        (``module.parameter_free_shares()``: ``pfree_conv``, ``pfree_enhance`` for
        BNAS-v2; ``pfree_normal``, ``pfree_reduce`` for DARTS' search network; ``pfree``,
        ``pfree_argmax`` for NAS-Bench-201 cells), which rises when DARTS collapses.

        Raises:
            RuntimeError: no :attr:`arch_loader` was attached.
        """
        images, targets = batch
        module = ctx.module
        if self.arch_optimizer is None:
            self.setup(module, None)
        out = {}
        if ctx.epoch >= self.arch_start_epoch:
            if self.arch_loader is None:
                raise RuntimeError("BNASv2.arch_loader is not set (train_loader() builds it)")
            total_epochs = ctx.total_steps / max(ctx.steps_per_epoch, 1)
            conf = self.confidence_factor(ctx.epoch, math.ceil(total_epochs))
            # CLR: first order scales Adam's lr, second order the loss (reference; module doc)
            lr = self.arch_lr if self.unrolled else self.arch_lr * conf
            for g in self.arch_optimizer.param_groups:
                g["lr"] = lr
            xa, ya = self._arch_batch(ctx.step, ctx.device)
            self.arch_optimizer.zero_grad(set_to_none=True)
            if self.unrolled:
                grads, arch_loss = self.unrolled_arch_grads(ctx, images, targets, xa, ya, loss_scale=conf)
                for a, g in zip(module.arch_parameters(), grads):
                    a.grad = g
                out["arch_confidence"] = conf
            else:
                arch_loss = self.criterion(ctx.model(xa), ya)  # fp32: alpha gradients are small
                arch_loss.backward()
            if self.arch_clip_grad is not None:
                out["arch_grad_norm"] = float(torch.nn.utils.clip_grad_norm_(module.arch_parameters(),
                                                                             self.arch_clip_grad))
            self.arch_optimizer.step()
            for p in module.parameters():  # the weights' gradients of this pass are not used
                p.grad = None
            out.update(arch_loss=arch_loss.detach(), arch_lr=lr)
        with ctx.autocast():
            loss = self.criterion(ctx.model(images), targets)
        ctx.backward(loss)
        out.update(module.parameter_free_shares())
        if ctx.steps_per_epoch and ((ctx.step + 1) % ctx.steps_per_epoch == 0 or ctx.step + 1 == ctx.total_steps):
            self._record_epoch(module, ctx)
        out["loss"] = loss.detach()
        return out

    # -- second order ----------------------------------------------------------
    def unrolled_arch_grads(self, ctx, x_train, y_train, x_val, y_val, loss_scale: float = 1.0):
        """Second-order DARTS gradient of ``loss_scale * L_val(w', alpha)`` w.r.t. the architecture parameters.

        ``w'`` is the weight optimizer's (``ctx.optimizer``, a ``torch.optim.SGD``)
        next step on ``grad_w L_train(w, alpha)`` of ``(x_train, y_train)``, taken
        without changing its state (:func:`sgd_lookahead`). The result is
        ``grad_alpha L_val(w', alpha) - (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)``
        with ``w+- = w +- eps * u``, ``u = eta * v``, ``v = grad_w' L_val(w', alpha)``,
        ``eta`` the per-weight derivative of the SGD step w.r.t. its gradient
        (the lr ``xi`` for plain momentum SGD, ``xi (1 + m)`` with Nesterov) and
        ``eps = r / ||u||``. For plain momentum SGD with one lr this is exactly
        DARTS' ``w +- (r / ||v||) v`` and ``xi * (grad+ - grad-) / (2 r / ||v||)``.

        Every pass is a fp32 ``functional_call`` of ``ctx.module`` with stand-in
        tensors for its parameters and copies of its buffers, so the module's
        weights, gradients and BN statistics are untouched and DDP's reducer is
        not involved. Under DDP, ``grad_w L_train``, ``v`` and the result are
        averaged over ranks (each rank passes its shard of the global batches).

        Returns:
            ``(grads, val_loss)``: one gradient per ``ctx.module.arch_parameters()``
            (same shapes; identical on every rank) and the unscaled ``L_val(w', alpha)``.

        Raises:
            ConfigError: ``ctx.optimizer`` is not a ``torch.optim.SGD``.
        """
        module, opt = ctx.module, getattr(ctx, "optimizer", None)
        if self.criterion is None:
            self.setup(module, None)
        if not isinstance(opt, torch.optim.SGD):
            raise ConfigError("algorithm.unrolled: second-order DARTS steps the trainer's SGD optimizer ahead, "
                              f"but the step context holds {type(opt).__name__}")
        names = {id(p): n for n, p in module.named_parameters()}
        arch = module.arch_parameters()
        alpha = {names[id(a)]: a.detach().requires_grad_() for a in arch}
        stepped = [(names[id(p)], p, g) for g in opt.param_groups for p in g["params"]]
        const = {n: p.detach() for n, p in module.named_parameters()}
        buffers = {n: b.clone() for n, b in module.named_buffers()}  # absorb the BN statistics updates

        def loss_at(weights, x, y):
            return self.criterion(functional_call(module, {**const, **buffers, **weights, **alpha}, (x,)), y)

        # 1. grad_w L_train(w, alpha) and the look-ahead step w'
        w = {n: p.detach().requires_grad_() for n, p, _ in stepped}
        g_train = torch.autograd.grad(loss_at(w, x_train, y_train), list(w.values()), allow_unused=True)
        g_train = _mean_over_ranks(g_train)
        w_next, eta = sgd_lookahead(opt, [p for _, p, _ in stepped], g_train)
        # 2. L_val(w', alpha): its alpha gradient and v = grad_w' L_val
        w1 = {n: t.requires_grad_() for (n, _, _), t in zip(stepped, w_next)}
        val_loss = loss_at(w1, x_val, y_val)
        g_val = torch.autograd.grad(val_loss * loss_scale, list(alpha.values()) + list(w1.values()),
                                    allow_unused=True)
        d_alpha = [torch.zeros_like(a) if g is None else g for a, g in zip(arch, g_val[:len(arch)])]
        v = _mean_over_ranks(g_val[len(arch):])
        # 3. the implicit term by central differences along u = eta * v
        u = [None if gi is None else e * gi for gi, e in zip(v, eta)]
        norms = [torch.linalg.vector_norm(t) for t in u if t is not None]
        norm = torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
        if norm > 0:  # identical on every rank (v, eta are); u = 0 at lr 0
            eps = self.unrolled_r / norm
            grads_pm = []
            for sign in (1.0, -1.0):
                wpm = {n: p.detach() if ui is None else p.detach() + (sign * eps) * ui
                       for (n, p, _), ui in zip(stepped, u)}
                g = torch.autograd.grad(loss_at(wpm, x_train, y_train), list(alpha.values()), allow_unused=True)
                grads_pm.append([torch.zeros_like(a) if gi is None else gi for a, gi in zip(arch, g)])
            d_alpha = [d - (gp - gn) / (2 * eps) for d, gp, gn in zip(d_alpha, *grads_pm)]
        return _mean_over_ranks(d_alpha), val_loss.detach()

    def _record_epoch(self, module, ctx) -> None:
        """Append the argmax architecture and the parameter-free shares at the end of an epoch
        to :attr:`arch_history` (saved with the checkpoint; read by ``tools/darts_trajectory.py``).
        Bookkeeping only: nothing in training reads it."""
        arch = (module.found_arch()[0] if hasattr(module, "found_arch")
                else self.space.from_genotype(module.genotype()))
        self.arch_history.append({"epoch": int(ctx.epoch), "step": int(ctx.step) + 1,
                                  "arch": [int(a) for a in arch], **module.parameter_free_shares()})

    def state_dict(self) -> dict:
        return {"arch_optimizer": None if self.arch_optimizer is None else self.arch_optimizer.state_dict(),
                "arch_history": list(self.arch_history)}

    def load_state_dict(self, d: dict) -> None:
        """Restore :meth:`state_dict` (ValueError for a state of another form)."""
        if d is not None and not isinstance(d, dict):
            raise ValueError(f"the algorithm state must be a dict, got {type(d).__name__}")
        self.arch_history = list((d or {}).get("arch_history", []))
        st = (d or {}).get("arch_optimizer")
        if st is not None and not isinstance(st, dict):
            raise ValueError(f"algorithm 'arch_optimizer' must be an optimizer state dict, got {type(st).__name__}")
        if st is None:
            return
        if self.arch_optimizer is None:
            self._pending_state = st
        else:
            self.arch_optimizer.load_state_dict(st)


def sgd_lookahead(optimizer: torch.optim.SGD, params, grads):
    """The weights after ``optimizer.step()`` with gradients ``grads``, without stepping it.

    ``torch.optim.SGD``'s update per parameter ``p`` of a group with lr ``xi``,
    momentum ``m``, dampening ``tau``, weight decay ``wd``: ``d = g + wd * p``;
    ``b = d`` (no buffer yet) or ``m * buf + (1 - tau) * d``; ``step = d + m * b``
    (Nesterov) or ``b`` (``step = d`` without momentum); ``p' = p - xi * step``.
    A parameter with no gradient (``None``) is not stepped, as in torch.

    Args:
        optimizer: the weight optimizer (its ``state[p]["momentum_buffer"]`` read, not changed).
        params: parameters of ``optimizer`` (any order).
        grads: one gradient (or None) per parameter.

    Returns:
        ``(new, eta)``: per parameter the detached ``p'``, and ``eta`` = the
        derivative ``-dp'/dg`` (a float: ``xi``, ``xi (1 - tau)`` or with Nesterov
        ``xi (1 + m (1 - tau))``, or ``xi (1 + m)`` on the first step), None where not stepped.

    Raises:
        ConfigError: a group with ``maximize``, or a parameter not in ``optimizer``.
    """
    group_of = {id(p): grp for grp in optimizer.param_groups for p in grp["params"]}
    new, eta = [], []
    for p, g in zip(params, grads):
        grp = group_of.get(id(p))
        if grp is None:
            raise ConfigError("sgd_lookahead: a parameter is not in the optimizer")
        if grp.get("maximize"):
            raise ConfigError("algorithm.unrolled: the weight SGD maximizes (maximize=True)")
        w = p.detach()
        if g is None:
            new.append(w)
            eta.append(None)
            continue
        lr, m = float(grp["lr"]), float(grp.get("momentum", 0.0))
        tau, wd = float(grp.get("dampening", 0.0)), float(grp.get("weight_decay", 0.0))
        d = g + wd * w if wd else g
        slope = 1.0
        if m:
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is None:
                b = d
            else:
                b = m * buf + (1.0 - tau) * d
                slope = 1.0 - tau
            if grp.get("nesterov"):
                step, slope = d + m * b, 1.0 + m * slope
            else:
                step = b
        else:
            step = d
        new.append(w - lr * step)
        eta.append(lr * slope)
    return new, eta


def _mean_over_ranks(tensors):
    """Average a list of tensors (None entries kept) over the DDP ranks in one all-reduce."""
    if not D.is_dist():
        return list(tensors)
    present = [t for t in tensors if t is not None]
    if not present:
        return list(tensors)
    flat = D.all_reduce_mean(torch.cat([t.reshape(-1) for t in present]))
    out, i = [], 0
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        out.append(flat[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out
