"""Zero-shot scoring: P(present) = softmax over (positive, negative) logits, CT-CLIP style.

For finding f with positive text embedding t+ and negative t- (each the re-normalised mean of its prompts'
L2-normalised embeddings), and an L2-normalised image embedding v:

    logit± = s * <v, t±>          (s = the model's logit scale, exp(temperature) for CT-CLIP)
    P(present) = exp(logit+) / (exp(logit+) + exp(logit-)) = sigmoid(logit+ - logit-)

With one prompt per side this is exactly CT-CLIP's scripts/zero_shot.py. With several prompts
(``--templates ensemble`` or synonyms) the *embeddings* are averaged, not the probabilities.
"""

from __future__ import annotations

import numpy as np


def l2n(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, 1e-12)


def class_embedding(prompt_embeddings: np.ndarray) -> np.ndarray:
    """(P, D) prompt embeddings -> (D,) mean of normalised embeddings, re-normalised."""
    return l2n(l2n(np.asarray(prompt_embeddings, dtype=np.float64)).mean(axis=0))


def zeroshot_probabilities(
    image_emb: np.ndarray, pos: np.ndarray, neg: np.ndarray, logit_scale: float
) -> np.ndarray:
    """(N, D) images, (K, D) positive and (K, D) negative class embeddings -> (N, K) P(present)."""
    v = l2n(np.asarray(image_emb, dtype=np.float64))
    lp = logit_scale * v @ l2n(np.asarray(pos, dtype=np.float64)).T
    ln = logit_scale * v @ l2n(np.asarray(neg, dtype=np.float64)).T
    d = lp - ln
    out = np.empty_like(d)
    pos_mask = d >= 0
    out[pos_mask] = 1.0 / (1.0 + np.exp(-d[pos_mask]))
    e = np.exp(d[~pos_mask])
    out[~pos_mask] = e / (1.0 + e)
    return out
