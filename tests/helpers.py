"""Small synthetic volumes for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_nifti(path: Path, arr: np.ndarray, affine: np.ndarray | None = None) -> Path:
    import nibabel as nib

    if affine is None:
        affine = np.diag([-1.5, -1.5, 3.0, 1.0])  # LPS, like scanners write
    nib.save(nib.Nifti1Image(arr, affine), str(path))
    return path


def cli_json(r):
    """stdout of a successful CliRunner result, parsed (the failure shows stderr)."""
    import json

    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def run_history(run: Path) -> list[dict]:
    """The per-epoch records of a `finetune` run directory (metrics.jsonl)."""
    import json

    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def phantom_array(shape=(48, 40, 24), seed: int = 0) -> np.ndarray:
    """int16 HU: air outside, soft tissue body, two low-density 'lungs', a dense posterior 'spine'."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    a = np.full(shape, -1000.0)
    a[(x**2 / 0.8 + y**2 / 0.6) < 1] = 40
    a[((x - 0.35) ** 2 + y**2) < 0.08] = -850
    a[((x + 0.35) ** 2 + y**2) < 0.08] = -850
    a[(x**2 + (y + 0.55) ** 2) < 0.02] = 700
    a += rng.normal(0, 5, shape)
    return a.astype(np.int16)


# ---- parity fixtures (../shared/parity/README.md): the fill function, the fixed input, the comparison ----


def fill_value(name: str, shape):
    """Every state_dict entry of the official model filled by its key name (README "Fill function")."""
    import zlib
    from math import prod

    import torch

    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    seed = zlib.crc32(name.encode()) % 1000
    v = torch.sin(torch.arange(prod(shape), dtype=torch.float64) * 0.7 + seed) * 0.05
    if name.endswith("running_var"):
        v = v.abs() + 1.0
    return v.reshape(shape).to(torch.float32)


def fixture_input(shape):
    """The fixtures' input volume: sin(0.01 * arange(numel)) in float64, then float32."""
    from math import prod

    import torch

    return torch.sin(torch.arange(prod(shape), dtype=torch.float64) * 0.01).reshape(shape).float()


def amax(a, b) -> float:
    """Max absolute difference in float64; the shapes must agree."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


# ---- report generation: tiny causal LMs built locally from a config (no downloads) ----


def tiny_lm_dir(path: Path, *, arch: str = "gpt2", weights: bool = False, width: int = 64) -> Path:
    """A transformers causal-LM directory with ctvl's packaged phantom tokenizer: config.json (+ random weights
    with ``weights=True``; without them ``--llm DIR`` trains from scratch)."""
    import shutil

    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    tok_src = Path(__file__).resolve().parents[1] / "ctvl_cli" / "tokenizers" / "phantom"
    path.mkdir(parents=True, exist_ok=True)
    for f in tok_src.iterdir():
        shutil.copy(f, path / f.name)
    vocab = 948
    special = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}  # [CLS], [SEP], [PAD]
    if arch == "gpt2":
        cfg = GPT2Config(vocab_size=vocab, n_embd=width, n_layer=2, n_head=2, n_positions=512, **special)
    else:
        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
            **special,
        )
    if weights:
        import torch

        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(cfg).save_pretrained(str(path))
    else:
        cfg.save_pretrained(str(path))
    return path
