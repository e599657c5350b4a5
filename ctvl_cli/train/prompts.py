"""``finetune clip --prompt-weight``: a training loss on the zero-shot protocol itself.

For every finding of ``--labels`` the card's prompt templates give a positive and a negative text (CT-CLIP:
``"{X} is present."`` / ``"{X} is not present."``). Each step these prompts go through the text tower, and for
every scan of the batch the zero-shot logit ``s * (<v, t+> - <v, t->)`` (exactly what ``ctvl zeroshot``
computes, see ``ctvl_cli.zeroshot.scoring``) is trained with binary cross-entropy against the scan's label.
This is CT-CLIP VocabFine's idea (training texts made of ``"{p} is present."`` / ``"{p} is not present."``
sentences) as a direct loss: reports teach the text tower how findings are described, the prompt loss ties the
prompt wording to the same image embeddings. Unknown labels (empty cells) are left out.

Prompt embeddings are computed with the text tower's BatchNorm layers (``txt_norm*``) in evaluation mode, i.e.
normalised with the running statistics of the report batches, as at inference: the 2K prompts are not a batch of
reports and must neither be normalised by their own statistics nor move the running ones.
"""

from __future__ import annotations

import contextlib
from typing import Any


def prompt_texts(names: list[str], template_set: str) -> tuple[list[str], list[int], list[int]]:
    """All prompts (positives of every finding, then negatives) and, per prompt, its finding index; the second
    list is for positives, the third for negatives."""
    from ctvl_cli.zeroshot.labels import findings_from_names

    findings = findings_from_names(names, template_set=template_set)
    texts: list[str] = []
    pos_of: list[int] = []
    neg_of: list[int] = []
    for k, f in enumerate(findings):
        texts += f.positive
        pos_of += [k] * len(f.positive)
    for k, f in enumerate(findings):
        texts += f.negative
        neg_of += [k] * len(f.negative)
    return texts, pos_of, neg_of


@contextlib.contextmanager
def _text_norm_eval(model):
    """BatchNorm layers of the text projection (named ``txt_norm*``) in eval mode for the duration."""
    from torch.nn.modules.batchnorm import _BatchNorm

    bns = [m for n, m in model.named_modules() if n.startswith("txt_norm") and isinstance(m, _BatchNorm)]
    was = [m.training for m in bns]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(bns, was):
            m.train(w)


class PromptBank:
    """Tokenised prompts of K findings; ``class_embeddings(model)`` -> ((K, D) positive, (K, D) negative)."""

    def __init__(self, names: list[str], template_set: str, tokenize) -> None:
        texts, pos_of, neg_of = prompt_texts(names, template_set)
        self.k, self.n_pos = len(names), len(pos_of)
        self.ids, self.mask = tokenize(texts)
        # (K, P) averaging matrices: class embedding = normalised mean of the normalised prompt embeddings
        self.pos_avg = _avg_matrix(pos_of, self.k, self.ids.device)
        self.neg_avg = _avg_matrix(neg_of, self.k, self.ids.device)

    def class_embeddings(self, model) -> tuple[Any, Any]:
        import torch.nn.functional as F

        with _text_norm_eval(model):
            t = F.normalize(model.encode_text(self.ids, self.mask).float(), dim=-1)
        pos = F.normalize(self.pos_avg @ t[: self.n_pos], dim=-1)
        neg = F.normalize(self.neg_avg @ t[self.n_pos :], dim=-1)
        return pos, neg


def _avg_matrix(owner: list[int], k: int, dev):
    import torch

    m = torch.zeros(k, len(owner), device=dev)
    for j, c in enumerate(owner):
        m[c, j] = 1.0
    return m / m.sum(1, keepdim=True).clamp(min=1)


def zeroshot_logits(img, pos, neg, scale):
    """(B, D) image embeddings, (K, D) class embeddings -> (B, K) logits of P(present), as zero-shot scores."""
    import torch.nn.functional as F

    v = F.normalize(img.float(), dim=-1)
    return scale.float() * (v @ pos.T - v @ neg.T)
