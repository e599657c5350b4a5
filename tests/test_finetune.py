"""`ctvl finetune clip` / `tokenizer` end to end on tiny phantoms (CPU): loss goes down, the run directory is a
model, resume is exact, a SIGKILLed run resumes, and 2-process torchrun (gloo) equals 1 process with the same
global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import cli_json, run_history


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from ctvl_cli.phantom import write_phantoms

    d = tmp_path_factory.mktemp("ph")
    write_phantoms(d, n=8, seed=7)
    return d


def _weights(run: Path):
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


BASE = ["--model", "ctvl-tiny-test", "-b", "4", "--no-text-aug", "-j", "0", "--device", "cpu", "-f", "json"]


def test_clip_lowers_loss_and_run_dir_is_a_model(runner, phantoms, tmp_path):
    from ctvl_cli.cli.app import app

    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(phantoms / "pairs.csv"), "--out", str(run), *BASE]
    args += ["--epochs", "12", "--lr", "3e-3", "--warmup", "0", "--val-pairs", str(phantoms / "pairs.csv")]
    args += ["--val-labels", str(phantoms / "labels.csv")]
    out = cli_json(runner.invoke(app, args))
    assert out["steps"] == 24 and out["epochs_done"] == 12 and out["metric"] == "zs_auroc"
    h = run_history(run)
    assert len(h) == 12 and all("r2i_R@5" in r and "zs_auroc" in r for r in h)
    first = (h[0]["loss"] + h[1]["loss"]) / 2
    last = (h[-1]["loss"] + h[-2]["loss"]) / 2
    assert last < 0.7 * first, (first, last)
    # memorised training pairs are retrieved better than chance (1/8 at R@1)
    assert max(r["r2i_R@1"] for r in h) > 0.25
    card = json.loads((run / "ctvl_card.json").read_text())
    assert card["name"] == "run" and card["weights"][0]["path"] == "model.safetensors"
    # the run directory works as --model anywhere
    cache = tmp_path / "e.h5"
    r = runner.invoke(
        app,
        [
            "embed",
            str(phantoms / "phantom_7_000000.nii.gz"),
            "--model",
            str(run),
            "--cache",
            str(cache),
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["models", "info", str(run), "-f", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["name"] == "run"


def test_existing_run_needs_resume_or_overwrite(runner, phantoms, tmp_path):
    from ctvl_cli.cli.app import app

    run = tmp_path / "run"
    args = [
        "finetune",
        "clip",
        "--pairs",
        str(phantoms / "pairs.csv"),
        "--out",
        str(run),
        *BASE,
        "--max-steps",
        "1",
    ]
    cli_json(runner.invoke(app, args))
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "--resume" in r.stderr and r.stdout == ""
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    r = runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "none"), "--resume"])
    assert r.exit_code == 2 and "nothing to resume" in r.stderr


@pytest.mark.parametrize("aug", [[], ["--aug-shift", "10", "--aug-rotate", "5", "--aug-scale", "0.1"]])
def test_resume_is_exact(runner, phantoms, tmp_path, aug):
    """Interrupted after 3 of 6 steps (mid-epoch) and resumed == the uninterrupted run, bit for bit (also with
    spatial augmentation: its draws depend only on seed, epoch and index)."""
    from ctvl_cli.cli.app import app

    common = [
        "--pairs",
        str(phantoms / "pairs.csv"),
        *BASE,
        *aug,
        "--epochs",
        "3",
        "--accum",
        "1",
        "--save-every",
        "1",
    ]
    cli_json(runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "a"), *common]))
    r = runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "b"), *common, "--stop-after", "3"])
    assert r.exit_code == 130 and "--resume" in r.stderr
    out = cli_json(
        runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "b"), "--resume", "-f", "json"])
    )
    assert out["resumed_from_step"] == 3 and out["steps"] == 6
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] == wb[k]).all(), k


def test_accumulation_equals_big_batch(runner, phantoms, tmp_path):
    """--accum 2 with batch 2 gives the same update as batch 4 (negatives span the accumulated batch)."""
    import torch

    from ctvl_cli.cli.app import app

    common = ["--pairs", str(phantoms / "pairs.csv"), "--model", "ctvl-tiny-test", "--no-text-aug", "-j", "0"]
    common += ["--device", "cpu", "-f", "json", "--max-steps", "2", "--grad-clip", "0"]
    cli_json(runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "big"), *common, "-b", "4"]))
    cli_json(
        runner.invoke(
            app, ["finetune", "clip", "--out", str(tmp_path / "acc"), *common, "-b", "2", "--accum", "2"]
        )
    )
    wa, wb = _weights(tmp_path / "big"), _weights(tmp_path / "acc")
    for k in wa:
        if (
            k == "log_scale"
        ):  # open_clip-style accumulation sums the temperature's gradient over micro-batches
            continue
        assert torch.allclose(wa[k], wb[k], atol=2e-5), k


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_sigkill_then_resume_finishes(phantoms, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ctvl_cli", "finetune", "clip", "--pairs", str(phantoms / "pairs.csv")]
    cmd += ["--out", str(run), *BASE, "--epochs", "200", "--save-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    t0 = time.time()
    while not (run / "checkpoint.pt").exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    import torch

    done = torch.load(run / "checkpoint.pt", weights_only=False)["step"]
    assert done >= 1
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctvl_cli",
            "finetune",
            "clip",
            "--out",
            str(run),
            "--resume",
            "--epochs",
            "3",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    if done >= 6:  # the killed run had already passed 3 epochs: nothing left to do
        assert r.returncode == 0
    else:
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["resumed_from_step"] == done and out["steps"] == 6
    assert (run / "model.safetensors").exists()


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(phantoms, tmp_path):
    """2 gloo processes x batch 2 == 1 process x batch 4: gathered negatives and averaged gradients are right."""
    import torch

    common = ["finetune", "clip", "--pairs", str(phantoms / "pairs.csv"), "--model", "ctvl-tiny-test"]
    common += ["--no-text-aug", "-j", "0", "--device", "cpu", "-f", "json", "--epochs", "2"]
    ddp = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533"]
    r = subprocess.run(
        [*ddp, "-m", "ctvl_cli", *common, "--out", str(tmp_path / "ddp"), "-b", "2"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)  # only rank 0 writes to stdout
    assert out["steps"] == 4  # 8 pairs / (2 processes x 2) per step x 2 epochs
    assert "effective batch 4, 2 process(es)" in r.stderr
    r1 = subprocess.run(
        [sys.executable, "-m", "ctvl_cli", *common, "--out", str(tmp_path / "one"), "-b", "4"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert r1.returncode == 0, r1.stderr[-2000:]
    wa, wb = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=5e-5), k


def test_tokenizer_command(runner, phantoms, tmp_path):
    from ctvl_cli.cli.app import app
    from ctvl_cli.tokenizers import load_hf_tokenizer

    out = cli_json(
        runner.invoke(
            app,
            [
                "finetune",
                "tokenizer",
                "--texts",
                str(phantoms / "reports.csv"),
                "--out",
                str(tmp_path / "tok"),
                "--vocab-size",
                "300",
                "-f",
                "json",
            ],
        )
    )
    assert out["pad_id"] == 0 and out["texts"] == 8 and out["vocab_size"] <= 300
    tok = load_hf_tokenizer(str(tmp_path / "tok"))
    ids = tok(["No pleural effusion."])["input_ids"][0]
    assert tok.convert_ids_to_tokens(ids)[0] == "[CLS]" and tok.unk_token_id not in ids


def test_input_cache_store_fills_once_resumes_and_invalidates(phantoms, tmp_path):
    import numpy as np
    import torch

    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.preprocess.engine import preprocess
    from ctvl_cli.registry import resolve_card
    from ctvl_cli.train.inputs import InputStore

    spec = resolve_card("ctvl-tiny-test").preprocess
    imgs = sorted(str(p) for p in phantoms.glob("*.nii.gz"))[:4]
    store = InputStore(tmp_path / "st", imgs, spec)
    assert store.missing() == [0, 1, 2, 3]
    assert store.fill() == 4 and store.missing() == []
    for i in (0, 3):  # same engine as embed, stored as float16
        ref = preprocess(load_volume(imgs[i]), spec, device="cpu")
        assert store[i].shape == ref.shape and store[i].dtype == torch.float32
        assert torch.allclose(store[i], ref, atol=1e-3) and not torch.equal(store[i], torch.zeros_like(ref))
    # an interrupted fill resumes: forget one entry in the done bitmap, only that one is redone
    done = np.load(store.done_path)
    done[2] = False
    np.save(store.done_path, done)
    assert InputStore(tmp_path / "st", imgs, spec).missing() == [2]
    assert InputStore(tmp_path / "st", imgs, spec).fill() == 1
    # another preprocessing or a touched input file gives another store, never stale tensors
    other = resolve_card("ctvl-phantom").preprocess
    assert InputStore(tmp_path / "st", imgs, other).data_path != store.data_path
    st = os.stat(imgs[1])
    os.utime(imgs[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        assert InputStore(tmp_path / "st", imgs, spec).missing() == [0, 1, 2, 3]
    finally:
        os.utime(imgs[1], ns=(st.st_atime_ns, st.st_mtime_ns))


def test_clip_with_input_cache_trains_and_reuses_the_store(runner, phantoms, tmp_path):
    from ctvl_cli.cli.app import app

    cache = tmp_path / "inputs"
    args = ["finetune", "clip", "--pairs", str(phantoms / "pairs.csv"), *BASE, "--input-cache", str(cache)]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--epochs", "6", "--lr", "3e-3"])
    out = cli_json(r)
    assert "preprocessing 8 volume(s) once" in r.stderr and out["steps"] == 12
    assert len(list(cache.glob("inputs-*.npy"))) == 2  # data + done bitmap
    h = run_history(tmp_path / "a")
    assert h[-1]["loss"] < h[0]["loss"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--epochs", "1"])
    assert cli_json(r)["steps"] == 2 and "preprocessing" not in r.stderr


def test_small_clip_options_build_and_train_one_step():
    import torch

    from ctvl_cli.models.small import build

    for params in ({}, {"norm": "bn", "proj_norm": "bn", "pool": "avg"}, {"norm": "bn", "first_res": False}):
        torch.manual_seed(0)
        m = build(
            {
                "embed_dim": 16,
                "widths": [4, 8],
                "vocab_size": 50,
                "text_width": 16,
                "text_layers": 1,
                "text_heads": 2,
                "max_length": 12,
                **params,
            }
        )
        x, ids = torch.randn(4, 1, 16, 16, 16), torch.randint(1, 50, (4, 12))
        img, txt = m.encode_image(x), m.encode_text(ids, torch.ones_like(ids))
        assert img.shape == txt.shape == (4, 16)
        assert torch.allclose(img.norm(dim=-1), torch.ones(4), atol=1e-5)
        (img @ txt.T).trace().backward()
        assert all(p.grad is not None for n, p in m.named_parameters() if n.startswith("visual"))
        kinds = {type(mod).__name__ for mod in m.visual.modules()}
        assert ("BatchNorm3d" in kinds) == (params.get("norm") == "bn")
        # first_res=False: the first stage is a strided conv only (no residual block weights)
        assert any(k.startswith("visual.0.res.") for k in m.state_dict()) == params.get("first_res", True)
        assert any(k.startswith("visual.1.res.") for k in m.state_dict())
    for bad in ({"norm": "ln"}, {"proj_norm": "ln"}, {"pool": "max"}):
        with pytest.raises(ValueError):
            build(bad)


def test_small_clip_channels_last_matches_ncdhw_and_loads_plain_weights():
    """The image tower runs channels-last for speed; features equal the same weights run NCDHW, and a state dict
    saved contiguous (safetensors) loads back into it."""
    import torch

    from ctvl_cli.models.small import build

    torch.manual_seed(0)
    kw = {"embed_dim": 16, "widths": [4, 8], "vocab_size": 50, "text_width": 16, "text_layers": 1,
          "text_heads": 2, "max_length": 12, "norm": "bn"}  # fmt: skip
    m = build(kw).eval()
    x = torch.randn(2, 1, 16, 16, 16)
    fast = m.image_feature_map(x)
    with torch.no_grad():
        ref = m.visual.to(memory_format=torch.contiguous_format)(x.contiguous())
    assert torch.allclose(fast, ref, atol=1e-5)
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    m2 = build(kw).eval()
    m2.load_state_dict(sd)
    assert m2.visual[0].down[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.allclose(m2.encode_image(x), m.encode_image(x), atol=1e-5)


def test_label_head_reads_small_clip_pooled_features():
    """The auxiliary label head reads small-clip's pooled trunk features (not the L2-normalised
    embedding), and the embedding it returns beside them is exactly encode_image's."""
    import torch

    from ctvl_cli.models.small import build
    from ctvl_cli.train.clip_step import pair_module

    torch.manual_seed(0)
    kw = {"embed_dim": 16, "widths": [4, 8], "vocab_size": 50, "text_width": 16, "text_layers": 1,
          "text_heads": 2, "max_length": 12, "norm": "bn"}  # fmt: skip
    m = build(kw).eval()
    net = pair_module(m, 5)
    assert net.head.in_features == m.pool_dim == 2 * kw["widths"][-1]  # avg + max pooled
    x = torch.randn(3, 1, 16, 16, 16)
    ids, mask = torch.randint(1, 50, (3, 6)), torch.ones(3, 6, dtype=torch.long)
    img, txt, scale, logits, zs, dense = net(x, ids, mask)
    assert zs is None and dense is None  # no prompt or mask loss asked for
    assert logits.shape == (3, 5) and torch.allclose(img, m.encode_image(x), atol=1e-6)
    emb, pooled = m.encode_image_pooled(x)
    assert torch.allclose(logits, net.head(pooled), atol=1e-6) and not torch.allclose(
        pooled.norm(dim=1), torch.ones(3)
    )


def test_text_aug_whole_controls_subsets(runner, phantoms, tmp_path):
    """--text-aug-whole 0 always trains on sentence subsets; the setting is stored in the run's checkpoint."""
    import random

    import torch

    from ctvl_cli.cli.app import app
    from ctvl_cli.train.data import sample_sentences, split_sentences

    text = "One. Two is here. Three. Four."
    subs = [sample_sentences(text, random.Random(i), keep_all_p=0.0) for i in range(200)]
    assert all(set(split_sentences(t)) <= set(split_sentences(text)) for t in subs)
    assert sum(len(split_sentences(t)) < 4 for t in subs) > 100
    assert all(sample_sentences(text, random.Random(i), keep_all_p=1.0) == text for i in range(20))
    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(phantoms / "pairs.csv"), "--out", str(run), "--model",
            "ctvl-tiny-test", "-b", "4", "-j", "0", "--device", "cpu", "-f", "json", "--epochs", "1",
            "--text-aug-whole", "0.2"]  # fmt: skip
    assert cli_json(runner.invoke(app, args))["steps"] == 2
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["config"]["text_aug"] is True and state["config"]["text_aug_whole"] == 0.2
    r = runner.invoke(app, [*args[:4], str(tmp_path / "bad"), *args[5:-1], "1.5"])
    assert r.exit_code == 2 and "text-aug-whole" in r.stderr, r.stderr


def test_clip_with_training_labels_adds_head_only_to_the_checkpoint(runner, phantoms, tmp_path):
    """--labels: auxiliary multi-label loss; its head is saved for resume but never exported with the model."""
    import torch

    from ctvl_cli.cli.app import app

    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(phantoms / "pairs.csv"), "--out", str(run), *BASE]
    args += ["--labels", str(phantoms / "labels.csv"), "--label-weight", "2", "--lr", "3e-3"]
    r = runner.invoke(app, [*args, "--epochs", "2", "--stop-after", "3"])
    assert r.exit_code == 130, r.stderr
    head = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["aux_head"]
    assert head["weight"].shape[0] == 18
    out = cli_json(
        runner.invoke(app, ["finetune", "clip", "--out", str(run), "--resume", "-f", "json", "-j", "0"])
    )
    assert out["steps"] == 4 and out["resumed_from_step"] == 3
    assert 0.0 < out["last_label_loss"] < 5.0  # reported beside the contrastive loss
    # small-clip: the head reads the pooled trunk features (wider than the embedding), not the embedding
    assert head["weight"].shape[1] == 32  # tiny-clip exposes no pooled features: the head reads the embedding
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert not torch.equal(state["aux_head"]["weight"], head["weight"])  # the head kept training after resume
    assert not any("head" in k for k in _weights(run))
    # a labels file missing training scans is refused up front, naming the file
    bad = tmp_path / "labels.csv"
    lines = (phantoms / "labels.csv").read_text().splitlines()
    bad.write_text("\n".join(lines[:-2]) + "\n")
    bad_args = [
        "finetune",
        "clip",
        "--pairs",
        str(phantoms / "pairs.csv"),
        "--out",
        str(tmp_path / "r2"),
        *BASE,
    ]
    r = runner.invoke(app, [*bad_args, "--labels", str(bad)])
    assert r.exit_code != 0 and "labels.csv" in r.stderr and "no labels" in r.stderr


def _word_tokenize(vocab: int, width: int):
    """A stand-in tokenizer for model-level tests: stable word ids, right padding."""
    import zlib

    import torch

    def tok(texts):
        rows = [[1 + zlib.crc32(w.encode()) % (vocab - 1) for w in t.lower().split()][:width] for t in texts]
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, (ids > 0).long()

    return tok


@pytest.mark.parametrize("templates", ["ctclip", "ensemble"])
def test_prompt_loss_logits_are_the_zeroshot_protocol(templates):
    """--prompt-weight trains exactly what `ctvl zeroshot` scores: sigmoid of the training logits equals
    zeroshot_probabilities() of the same image embeddings and the prompts' embeddings from the model in eval
    mode (text BatchNorm on running statistics), and encoding the prompts leaves those statistics alone."""
    import numpy as np
    import torch

    from ctvl_cli.models.small import build
    from ctvl_cli.phantom import finding_names
    from ctvl_cli.train.clip_step import pair_module
    from ctvl_cli.train.prompts import PromptBank, prompt_texts
    from ctvl_cli.zeroshot.labels import findings_from_names
    from ctvl_cli.zeroshot.scoring import class_embedding, zeroshot_probabilities

    torch.manual_seed(0)
    kw = {"embed_dim": 16, "widths": [4, 8], "vocab_size": 50, "text_width": 16, "text_layers": 1,
          "text_heads": 2, "max_length": 12, "norm": "bn", "proj_norm": "bn"}  # fmt: skip
    m = build(kw).train()
    tok = _word_tokenize(50, 12)
    names = finding_names()[:5]
    bank = PromptBank(names, templates, tok)
    net = pair_module(m, 0, bank)
    x = torch.randn(4, 1, 16, 16, 16)
    ids, mask = torch.randint(1, 50, (4, 7)), torch.ones(4, 7, dtype=torch.long)
    for _ in range(3):  # give the text BatchNorm running statistics of report batches
        net(x, ids, mask)
    before, var_before = m.txt_norm.running_mean.clone(), m.txt_norm.running_var.clone()
    with torch.no_grad():
        m.encode_text(*tok(prompt_texts(names, templates)[0]))  # train mode: would move the statistics
    assert not torch.allclose(m.txt_norm.running_mean, before)
    m.txt_norm.running_mean.copy_(before)
    m.txt_norm.running_var.copy_(var_before)
    bank.class_embeddings(m)
    assert torch.equal(m.txt_norm.running_mean, before) and m.txt_norm.training
    img, _, scale, _, zs, _ = net(x, ids, mask)  # prompts first, then the report batch updates the statistics
    assert zs.shape == (4, 5)
    m.eval()
    m.txt_norm.running_mean.copy_(before)
    m.txt_norm.running_var.copy_(var_before)
    with torch.no_grad():
        pos, neg = [], []
        for f in findings_from_names(names, template_set=templates):
            pos.append(class_embedding(m.encode_text(*tok(list(f.positive))).numpy()))
            neg.append(class_embedding(m.encode_text(*tok(list(f.negative))).numpy()))
    ref = zeroshot_probabilities(img.detach().numpy(), np.stack(pos), np.stack(neg), float(scale.detach()))
    assert np.allclose(torch.sigmoid(zs).detach().numpy(), ref, atol=1e-5)


def test_clip_prompt_weight_trains_the_zeroshot_prompts(runner, phantoms, tmp_path):
    """--prompt-weight through the CLI: the loss on the prompts' zero-shot logits is reported and falls, and
    `ctvl zeroshot --model RUN` on the training scans then ranks them by their labels; without --labels it is
    refused."""
    import numpy as np

    from ctvl_cli.cli.app import app
    from ctvl_cli.metrics import auroc
    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(phantoms / "pairs.csv"), "--out", str(run), *BASE]
    args += ["--labels", str(phantoms / "labels.csv"), "--label-weight", "0", "--prompt-weight", "5"]
    out = cli_json(runner.invoke(app, [*args, "--epochs", "30", "--lr", "3e-3", "--warmup", "0"]))
    h = run_history(run)
    assert out["last_label_loss"] is None and h[-1]["prompt_loss"] == pytest.approx(
        out["last_prompt_loss"], abs=1e-4
    )
    assert h[-1]["prompt_loss"] < 0.7 * h[0]["prompt_loss"], (h[0], h[-1])
    labels_txt = tmp_path / "labels.txt"
    names, table = read_label_table(phantoms / "labels.csv")
    labels_txt.write_text("\n".join(names) + "\n")
    r = runner.invoke(
        app, ["zeroshot", str(phantoms), "--labels", str(labels_txt), "--model", str(run), "-f", "json"]
    )
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    aucs = []
    for k, f in enumerate(names):
        y = np.array([table[scan_key(row["scan"])][k] for row in rows])
        if 0 < y.sum() < len(y):
            aucs.append(auroc(y, np.array([row[f] for row in rows])))
    assert len(aucs) >= 5 and np.mean(aucs) > 0.8, aucs
    r = runner.invoke(app, [*args[:5], str(tmp_path / "r2"), *BASE, "--prompt-weight", "1"])
    assert r.exit_code == 2 and "--labels" in r.stderr, r.stderr


def test_spatial_augmentation_geometry():
    """Whole-voxel shifts move the content and fill with the pad value; a 90-degree rotation about the first axis
    is rot90 in the other two; no augmentation is the identity; draws stay in range and depend only on the key."""
    import torch

    from ctvl_cli.train.augment import SpatialAug, apply, draw

    torch.manual_seed(0)
    x = torch.randn(1, 6, 8, 8)
    sp = (5.0, 5.0, 5.0)
    assert torch.allclose(apply(x, sp, -1.0, [0, 0, 0], [0, 0, 0], 1.0), x, atol=1e-5)
    y = apply(x, sp, -1.0, [10.0, 0.0, -5.0], [0, 0, 0], 1.0)  # +2 voxels along axis 0, -1 along axis 2
    assert torch.allclose(y[:, 2:, :, :-1], x[:, :-2, :, 1:], atol=1e-5)
    assert (y[:, :2] == -1.0).all() and (y[..., -1] == -1.0).all()
    r = apply(x, sp, -1.0, [0, 0, 0], [90.0, 0, 0], 1.0)
    assert any(torch.allclose(r, torch.rot90(x, k, (2, 3)), atol=1e-4) for k in (1, 3))
    z = apply(x, sp, -1.0, [0, 0, 0], [0, 0, 0], 0.5)  # shrunk to half: the border is padding
    assert (z[:, 0] == -1.0).all() and not torch.allclose(z, x)
    aug = SpatialAug(shift_mm=10, rotate_deg=5, scale=0.1)
    for key in range(50):
        shift, rot, scale = draw(aug, key)
        assert max(map(abs, shift)) <= 10 and max(map(abs, rot)) <= 5 and 0.9 <= scale <= 1.1
    assert draw(aug, 7) == draw(aug, 7) and draw(aug, 7) != draw(aug, 8)
    assert not SpatialAug().active and aug.active


def test_pair_dataset_augments_per_epoch(phantoms):
    """With augmentation a scan's training input changes from epoch to epoch, is reproducible for the same epoch,
    and keeps the model's shape; without it the input is the preprocessed volume."""
    import torch

    from ctvl_cli.registry import get_card
    from ctvl_cli.train.augment import SpatialAug
    from ctvl_cli.train.data import PairDataset, read_pairs

    spec = get_card("ctvl-tiny-test").preprocess
    pairs = read_pairs(str(phantoms / "pairs.csv"))
    plain = PairDataset(pairs, spec)
    ds = PairDataset(pairs, spec, aug=SpatialAug(shift_mm=8, rotate_deg=4, scale=0.05))
    x0 = plain[1][0]
    a = ds[1][0]
    assert a.shape == x0.shape and not torch.allclose(a, x0)
    assert torch.equal(ds[1][0], a)
    ds.epoch = 1
    assert not torch.allclose(ds[1][0], a)
    assert torch.equal(PairDataset(pairs, spec, aug=SpatialAug())[1][0], x0)
