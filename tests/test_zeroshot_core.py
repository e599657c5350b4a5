"""Label files, template sets and the CT-CLIP softmax-pair scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.zeroshot.labels import load_labels, template_sets, templates
from ctvl_cli.zeroshot.scoring import class_embedding, zeroshot_probabilities


def test_plain_text_labels_use_ctclip_prompts(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("# CT-RATE subset\nLung nodule\n\nPleural effusion  # fluid\n")
    out = load_labels(f)
    assert [x.name for x in out] == ["Lung nodule", "Pleural effusion"]
    assert out[0].positive == ("Lung nodule is present.",)
    assert out[0].negative == ("Lung nodule is not present.",)


def test_yaml_labels_with_synonyms_and_explicit_prompts(tmp_path):
    f = tmp_path / "labels.yaml"
    f.write_text(
        "Emphysema:\n  synonyms: [emphysematous changes]\n"
        "Cardiomegaly:\n  positive: ['The heart is enlarged.']\n  negative: ['Heart size is normal.']\n"
    )
    em, ca = load_labels(f, template_set="there-is")
    assert em.positive == ("There is Emphysema.", "There is emphysematous changes.")
    assert ca.positive == ("The heart is enlarged.",) and ca.negative == ("Heart size is normal.",)


def test_json_list_and_errors(tmp_path):
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"findings": ["Atelectasis", {"name": "Consolidation"}]}))
    assert [x.name for x in load_labels(f)] == ["Atelectasis", "Consolidation"]
    f.write_text(json.dumps([{"name": "A", "bogus": 1}]))
    with pytest.raises(InputError, match="unknown keys"):
        load_labels(f)
    g = tmp_path / "dup.txt"
    g.write_text("A\na\n")
    with pytest.raises(InputError, match="duplicate"):
        load_labels(g)
    with pytest.raises(InputError, match="not found"):
        load_labels(tmp_path / "missing.txt")
    with pytest.raises(UsageError, match="unknown template set"):
        templates("nope")


def test_ensemble_is_union_of_member_sets():
    assert "ensemble" in template_sets()
    pos, neg = templates("ensemble")
    assert len(pos) == len(neg) == 3 and "{} is present." in pos


def test_scoring_matches_explicit_pairwise_softmax():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(7, 16))
    pos, neg = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
    s = 14.3
    p = zeroshot_probabilities(img, pos, neg, s)
    for i in range(7):
        v = img[i] / np.linalg.norm(img[i])
        for k in range(5):
            lp = s * v @ (pos[k] / np.linalg.norm(pos[k]))
            ln = s * v @ (neg[k] / np.linalg.norm(neg[k]))
            ref = np.exp(lp) / (np.exp(lp) + np.exp(ln))
            assert abs(p[i, k] - ref) < 1e-12


def test_scoring_is_stable_for_huge_logits():
    img = np.array([[1.0, 0.0]])
    p = zeroshot_probabilities(img, np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]]), 1e4)
    assert p[0, 0] == 1.0
    p = zeroshot_probabilities(img, np.array([[-1.0, 0.0]]), np.array([[1.0, 0.0]]), 1e4)
    assert p[0, 0] == 0.0 and np.isfinite(p).all()


def test_class_embedding_is_normalised_mean():
    e = class_embedding(np.array([[2.0, 0.0], [0.0, 3.0]]))
    assert np.allclose(e, [2**-0.5, 2**-0.5])
