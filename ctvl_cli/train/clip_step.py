"""One ``finetune clip`` optimizer step: the wrapped model (both towers, the auxiliary label head, the prompt
logits), the contrastive loss (open_clip's ``gather_with_grad`` + ``local_loss`` under torchrun), the auxiliary
losses, and open_clip-style gradient accumulation."""

from __future__ import annotations

from ctvl_cli.train.common import Dist


def pair_module(
    model,
    n_labels: int = 0,
    prompts=None,
    dense_labels: int = 0,
    dense_channels: int = 0,
    dense_stage: int = -1,
    label_input: str = "pooled",
):
    """Wrap the model so DDP sees one forward returning both towers' features (torch imported lazily), plus,
    with ``n_labels``, the training-only linear head of the auxiliary label loss (never exported), with
    ``prompts`` (a PromptBank), the zero-shot logits of the batch's images, and with ``dense_labels`` (and the
    feature map's width ``dense_channels``), a training-only 1x1x1 convolution giving per-cell logits of the
    ``--masks`` loss on the map after image stage ``dense_stage`` (-1: the last, ``image_feature_map``)."""
    from torch import nn

    class Pair(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m
            # the head reads the pooled trunk features where the model exposes them (small-clip), else the
            # embedding: on L2-normalised embeddings its gradient is too weak to train a tower from scratch
            # label_input "embedding": the head reads the embedding itself, so its loss shapes the projections
            # (with a frozen tower, the pooled features would teach nothing)
            self.pooled = hasattr(model, "encode_image_pooled")
            self.on_emb = label_input == "embedding" or not self.pooled
            dim = model.embed_dim if self.on_emb else model.pool_dim
            self.head = nn.Linear(dim, n_labels) if n_labels else None
            self.dense = None
            if dense_labels:
                self.dense = _tied_head(model, dense_stage, dense_labels) or nn.Conv3d(
                    dense_channels, dense_labels, 1
                )
            self.prompts = prompts

        def forward(self, x, ids, mask):
            want_map = self.dense is not None
            if self.pooled and (self.head is not None or want_map):
                img, feats, *rest = self.m.encode_image_pooled(x, with_map=want_map, map_stage=dense_stage)
                fmap = rest[0] if want_map else None
            else:
                img = feats = self.m.encode_image(x)
                # models without encode_image_pooled: the feature map takes a second pass
                fmap = self.m.image_stage_maps(x)[dense_stage] if want_map else None
            logits = None if self.head is None else self.head((img if self.on_emb else feats).float())
            dense = None if self.dense is None else self.dense(fmap.float())
            scale = self.m.logit_scale()
            zs = None
            if self.prompts is not None:
                from ctvl_cli.train.prompts import zeroshot_logits

                zs = zeroshot_logits(img, *self.prompts.class_embeddings(self.m), scale)
            return img, self.m.encode_text(ids, mask), scale, logits, zs, dense

    return Pair(model)


def _tied_head(model, stage: int, n: int):
    """A small-clip whose skip path reads the ``--masks`` stage: the dense loss trains the first ``n`` channels of
    the model's own skip convolution (exported with the model) instead of a training-only head, so the maxima the
    embedding receives are the per-cell finding detectors that loss teaches."""
    from torch import nn

    skip = getattr(model, "skip", None)
    n_stages = len(getattr(model, "visual", ()))
    if skip is None or not n_stages or stage % n_stages != model.skip_stage or skip.out_channels < n:
        return None

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = skip  # shared with the model (named_parameters() lists it once)

        def forward(self, f):
            return self.conv(f)[:, :n]

    return Tied()


def _under(name: str, prefix: str) -> bool:
    """``name`` is the parameter ``prefix`` or lies under the module ``prefix`` (``visual`` covers ``visual.0.x``,
    not ``visual_proj.x``)."""
    return name == prefix or name.startswith(prefix + ".")


def freeze(model, prefixes) -> list[str]:
    """Freeze the submodules named by ``prefixes`` (``visual.0``, ``skip``; a parameter name or a prefix of
    one): no gradients, and eval mode so their BatchNorm statistics stay put too. Call again after every
    ``model.train()``. Returns the frozen parameter names; a prefix that names nothing raises ValueError."""
    names = [n for n, _ in model.named_parameters()]
    frozen = []
    for pre in prefixes:
        hit = [n for n in names if _under(n, pre)]
        if not hit:
            raise ValueError(f"{pre!r} names no parameter of the model (e.g. {', '.join(names[:3])})")
        frozen += hit
        try:
            model.get_submodule(pre).eval()
        except AttributeError:  # a single parameter
            pass
    off = set(frozen)
    for n, p in model.named_parameters():
        if n in off:
            p.requires_grad_(False)
    return frozen


def param_groups(net, weight_decay: float, lr_mult: dict[str, float]) -> list[dict]:
    """AdamW groups of the trainable parameters: weight decay on matrices (not on ``pos``), and per-prefix learning-rate
    factors ``lr_mult`` (model parameter names, as for ``freeze``; first match wins; the factor rides in the group
    as ``lr_scale``, which ``common.set_lr`` applies, as for ``finetune report``'s groups). A prefix that names no trainable parameter raises ValueError."""
    groups: dict[tuple[bool, float], list] = {}
    used = set()
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        n = name.removeprefix("module.").removeprefix("m.")
        mult = 1.0
        for pre, f in lr_mult.items():
            if _under(n, pre):
                mult = f
                used.add(pre)
                break
        groups.setdefault((p.ndim >= 2 and "pos" not in name, mult), []).append(p)
    unused = [pre for pre in lr_mult if pre not in used]
    if unused:
        raise ValueError(f"{unused[0]!r} names no trainable parameter of the model")
    # decayed groups first: without --lr-mult exactly the two groups (and order) of earlier checkpoints
    order = sorted(groups.items(), key=lambda kv: not kv[0][0])
    return [
        {"params": ps, "weight_decay": weight_decay if dec else 0.0, "lr_scale": mult}
        for (dec, mult), ps in order
    ]


def clip_loss(img, txt, scale, dist: Dist):
    import torch
    import torch.nn.functional as F

    n = img.shape[0]
    if dist.world > 1:
        from torch.distributed.nn.functional import all_gather

        all_img = torch.cat(all_gather(img), 0)
        all_txt = torch.cat(all_gather(txt), 0)
    else:
        all_img, all_txt = img, txt
    labels = torch.arange(n, device=img.device) + dist.rank * n
    li = scale * img.float() @ all_txt.float().T
    lt = scale * txt.float() @ all_img.float().T
    return (F.cross_entropy(li, labels) + F.cross_entropy(lt, labels)) / 2


def masked_bce(logits, y):
    """Mean BCE over the known (non-NaN) labels."""
    import torch.nn.functional as F

    known = ~y.isnan()
    return F.binary_cross_entropy_with_logits(logits[known], y[known]) if known.any() else logits.sum() * 0


def train_step(
    net,
    micro,
    opt,
    scaler,
    amp_dtype,
    dev,
    dist: Dist,
    grad_clip: float,
    label_weight: float = 0.0,
    prompt_weight: float = 0.0,
    mask_weight: float = 0.0,
    mask_pos_weight: float = 1.0,
    clip_weight: float = 1.0,
) -> tuple[float, dict[str, float]]:
    """One optimizer step over the micro-batches ``(x, ids, mask, y, t)`` (``y``: labels or None; ``t``: dense
    mask targets or None; ``mask_pos_weight`` weighs their positive cells). Returns the contrastive loss and the
    (unweighted) auxiliary losses that are on, as ``{"label_loss": .., "prompt_loss": .., "mask_loss": ..}``
    averaged over the micro-batches; their weighted sum with ``clip_weight`` x the contrastive loss is what is
    minimised (``clip_weight`` 0: the contrastive loss is reported, not trained)."""
    import contextlib
    from functools import partial

    import torch

    from ctvl_cli.train.masks import dense_loss

    mask_fn = partial(dense_loss, pos_weight=mask_pos_weight)

    def fwd(x, ids, mask):
        ctx = torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with ctx:
            return net(x, ids, mask)

    seen: dict[str, list[float]] = {}

    def aux(out, y, t, share: float):
        logits, zs, dense = out[3:6]
        total = 0.0
        terms = [
            ("label_loss", logits, y, label_weight, masked_bce),
            ("prompt_loss", zs, y, prompt_weight, masked_bce),
            ("mask_loss", dense, t, mask_weight, mask_fn),
        ]
        for key, lg, target, w, fn in terms:
            if lg is not None and target is not None and w:
                lo = fn(lg.float(), target)
                seen.setdefault(key, []).append(float(lo.detach()))
                total = total + w * share * lo
        return total

    opt.zero_grad(set_to_none=True)
    if len(micro) == 1:
        x, ids, mask, y, t = micro[0]
        out = fwd(x, ids, mask)
        loss = clip_loss(out[0], out[1], out[2], dist)
        scaler.scale(clip_weight * loss + aux(out, y, t, 1.0)).backward()
        total = float(loss.detach())
    else:
        with torch.no_grad():
            cached = [fwd(*m[:3])[:2] for m in micro]
        total = 0.0
        for j, m in enumerate(micro):
            sync = contextlib.nullcontext() if (dist.world == 1 or j == len(micro) - 1) else net.no_sync()
            with sync:
                out = fwd(*m[:3])
                imgs = torch.cat([out[0] if k == j else c[0] for k, c in enumerate(cached)])
                txts = torch.cat([out[1] if k == j else c[1] for k, c in enumerate(cached)])
                loss = clip_loss(imgs, txts, out[2], dist)
                scaler.scale(clip_weight * loss + aux(out, m[3], m[4], 1.0 / len(micro))).backward()
            total = float(loss.detach())
    if grad_clip:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    return total, {k: sum(v) / len(v) for k, v in seen.items()}
