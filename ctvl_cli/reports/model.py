"""Report generation model: frozen registry image encoder -> visual tokens from its spatial feature map ->
projector -> prefix embeddings of a Hugging Face causal language model.

Projectors (``--projector``):

* ``attn`` (CT-CHAT's ``attn_pool+mlp2x_gelu``): learned queries attend over the visual tokens (multi-head
  attention, LayerNorm on queries and keys), then LayerNorm -> Linear -> GELU -> Linear to the LM width.
* ``pool`` (M3D-LaMed's spatial-pooling projector): 3-D average pooling of the feature map (``pool_kernel``),
  then Linear -> GELU -> Linear to the LM width.

Both add a learned position embedding to the visual tokens (CNN feature maps carry no position code; CT-CHAT's
and M3D's ViT tokens already do). The sequence the LM sees is ``[visual prefix][BOS] report [EOS]``; the loss
covers the report tokens and EOS only.

A report model directory (``finetune report --out DIR``; the embedded default ``ctvl-phantom-report``) holds
``report_card.json``, ``projector.safetensors``, ``tokenizer/`` and, by how the LM was trained: ``llm/`` (the
whole LM: trained from scratch or fully fine-tuned), ``lora/`` (a peft adapter over the base LM named in the
card) or nothing (a frozen base LM named in the card).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ctvl_cli.errors import InputError, UsageError, WeightsNotFoundError

CARD = "report_card.json"
FORMAT = "ctvl-report-model/1"
DEFAULT_REPORT_MODEL = "ctvl-phantom-report"
PROJECTORS = ("attn", "pool")
LLM_TRAIN = ("auto", "frozen", "lora", "full")


@dataclass
class ProjectorSpec:
    kind: str
    in_dim: int
    out_dim: int
    grid: tuple[int, int, int]  # the encoder's feature-map grid (d, h, w)
    queries: int = 32
    heads: int = 4
    pool_kernel: int = 2
    hidden: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "grid": list(self.grid)}


class Projector(nn.Module):
    def __init__(self, spec: ProjectorSpec) -> None:
        super().__init__()
        if spec.kind not in PROJECTORS:
            raise UsageError(f"unknown projector {spec.kind!r}", hint=" | ".join(PROJECTORS))
        self.spec = spec
        c, h = spec.in_dim, spec.hidden or spec.out_dim
        d, hh, ww = spec.grid
        if spec.kind == "pool":
            k = spec.pool_kernel
            d, hh, ww = max(1, d // k), max(1, hh // k), max(1, ww // k)
        self.n_tokens = d * hh * ww if spec.kind == "pool" else spec.queries
        self.pos = nn.Parameter(torch.randn(d * hh * ww, c) * 0.02)
        if spec.kind == "attn":
            if c % spec.heads:
                raise UsageError(f"--projector-heads {spec.heads} must divide the feature width {c}")
            self.query = nn.Parameter(torch.randn(spec.queries, c) * 0.02)
            self.ln_q, self.ln_k = nn.LayerNorm(c), nn.LayerNorm(c)
            self.attn = nn.MultiheadAttention(c, spec.heads, batch_first=True)
            self.ln_out = nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, h), nn.GELU(), nn.Linear(h, spec.out_dim))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """(B, C, d, h, w) feature map -> (B, n_tokens, out_dim) prefix embeddings."""
        if self.spec.kind == "pool" and self.spec.pool_kernel > 1:
            k = self.spec.pool_kernel
            fmap = F.avg_pool3d(fmap, kernel_size=k, stride=k, ceil_mode=False)
        tok = fmap.flatten(2).transpose(1, 2) + self.pos
        if self.spec.kind == "attn":
            q = self.ln_q(self.query).unsqueeze(0).expand(tok.shape[0], -1, -1)
            kv = self.ln_k(tok)
            tok = self.ln_out(self.attn(q, kv, kv, need_weights=False)[0])
        return self.mlp(tok)


def feature_tokens(encoder, x: torch.Tensor) -> torch.Tensor:
    """The frozen encoder's spatial feature map (B, C, d, h, w), float32."""
    with torch.no_grad():
        return encoder.image_feature_map(x).float()


def encoder_grid(encoder, shape) -> tuple[int, tuple[int, int, int]]:
    """(channels, (d, h, w)) of the encoder's feature map for inputs of ``shape``."""
    fm = feature_tokens(encoder, torch.zeros(1, 1, *shape))
    if fm.ndim != 5:
        raise UsageError(
            f"the image encoder's feature map has shape {tuple(fm.shape)}, expected (B, C, d, h, w)"
        )
    return int(fm.shape[1]), tuple(int(s) for s in fm.shape[2:])  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------- the LM
def _has_weights(d: Path) -> bool:
    return any(d.glob("*.safetensors")) or any(d.glob("pytorch_model*.bin"))


def quiet_transformers() -> None:
    """No transformers progress bars or advisory warnings on stderr (ctvl reports its own errors)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_llm(source: str, *, seed: int = 0):
    """-> (causal LM in float32, how it was made: "pretrained" | "config"). ``source``: a hub name (from the
    local HF cache; nothing is downloaded when offline) or a local directory; a directory holding only a
    ``config.json`` is initialised at random from it (seeded), for training from scratch."""
    from transformers import AutoConfig, AutoModelForCausalLM

    quiet_transformers()
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise InputError("not a transformers model directory (no config.json)", path=p)
        if not _has_weights(p):
            cfg = AutoConfig.from_pretrained(str(p))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return AutoModelForCausalLM.from_config(cfg).float(), "config"
    try:
        m = AutoModelForCausalLM.from_pretrained(str(p) if p.is_dir() else source, dtype=torch.float32)
    except OSError as e:
        raise WeightsNotFoundError(
            f"cannot load causal LM {source!r} ({' '.join(str(e).split())[:200]})",
            hint="pass a local directory (config.json + weights, or config.json alone to train from scratch); "
            "hub names work only when already in the Hugging Face cache",
        ) from None
    except ValueError as e:
        raise UsageError(
            f"{source!r} is not a causal language model ({' '.join(str(e).split())[:200]})"
        ) from None
    return m, "pretrained"


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(
            str(Path(source).expanduser()) if Path(source).exists() else source
        )
    except (OSError, ValueError) as e:
        raise InputError(
            f"cannot load a tokenizer ({' '.join(str(e).split())[:160]})",
            path=source,
            hint="put the tokenizer files in the --llm directory or pass --tokenizer DIR",
        ) from None
    return tok


def special_ids(tok) -> dict[str, int]:
    """BOS/EOS/PAD ids of a tokenizer: GPT-style (bos/eos) or BERT-style ([CLS]/[SEP]/[PAD])."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    if bos is None:
        bos = eos
    if eos is None:
        raise UsageError(
            "the tokenizer has neither an EOS nor a [SEP] token", hint="pass another --tokenizer"
        )
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    return {"bos": int(bos), "eos": int(eos), "pad": int(pad)}


def encode_reports(tok, texts: list[str], ids: dict[str, int], max_len: int):
    """Report token ids + EOS, right-padded -> (ids (B, T), mask (B, T)). Texts longer than ``max_len`` tokens
    are cut (EOS kept)."""
    rows = []
    for t in texts:
        r = [*tok(t, add_special_tokens=False)["input_ids"][: max_len - 1], ids["eos"]]
        rows.append(r)
    n = max(len(r) for r in rows)
    out = torch.full((len(rows), n), ids["pad"], dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return out, mask


class ReportLM(nn.Module):
    """Projector + causal LM. ``forward`` returns the mean token loss of the reports given feature maps."""

    def __init__(self, projector: Projector, llm, ids: dict[str, int]) -> None:
        super().__init__()
        self.projector, self.llm, self.ids = projector, llm, ids
        # the LM's config names its tokenizer's special ids (GPT-2's defaults, 50256, lie outside a small vocabulary)
        llm.config.bos_token_id, llm.config.eos_token_id, llm.config.pad_token_id = (
            ids["bos"],
            ids["eos"],
            ids["pad"],
        )

    def _embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.llm.get_input_embeddings()(token_ids)

    def prefix(self, fmap: torch.Tensor) -> torch.Tensor:
        vis = self.projector(fmap)
        bos = self._embed(torch.full((fmap.shape[0], 1), self.ids["bos"], device=fmap.device))
        return torch.cat([vis.to(bos.dtype), bos], 1)

    def forward(self, fmap: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pre = self.prefix(fmap)
        emb = torch.cat([pre, self._embed(ids)], 1)
        att = torch.cat([torch.ones(pre.shape[:2], dtype=mask.dtype, device=mask.device), mask], 1)
        labels = torch.cat(
            [
                torch.full(pre.shape[:2], -100, dtype=ids.dtype, device=ids.device),
                ids.masked_fill(mask == 0, -100),
            ],
            1,
        )
        return self.llm(inputs_embeds=emb, attention_mask=att, labels=labels).loss

    @torch.no_grad()
    def generate(
        self,
        fmap: torch.Tensor,
        *,
        max_new_tokens: int = 256,
        decoding: str = "greedy",
        beams: int = 4,
        temperature: float = 1.0,
        top_p: float = 0.9,
        repetition_penalty: float = 1.0,
    ) -> torch.Tensor:
        """Token ids of the generated reports (B, <= max_new_tokens), EOS/PAD after the end."""
        pre = self.prefix(fmap)
        kw: dict[str, Any] = {
            "inputs_embeds": pre,
            "attention_mask": torch.ones(pre.shape[:2], dtype=torch.long, device=pre.device),
            "max_new_tokens": max_new_tokens,
            "eos_token_id": self.ids["eos"],
            "pad_token_id": self.ids["pad"],
            "repetition_penalty": repetition_penalty,
        }
        if decoding == "greedy":
            kw.update(do_sample=False, num_beams=1)
        elif decoding == "beam":
            kw.update(do_sample=False, num_beams=beams, early_stopping=True)
        elif decoding == "sample":
            kw.update(do_sample=True, temperature=temperature, top_p=top_p, num_beams=1)
        else:
            raise UsageError(f"unknown decoding {decoding!r}", hint="greedy | beam | sample")
        return self.llm.generate(**kw)


def decode(tok, rows: torch.Tensor, ids: dict[str, int]) -> list[str]:
    out = []
    for r in rows.tolist():
        if ids["eos"] in r:
            r = r[: r.index(ids["eos"])]
        text = tok.decode(r, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        out.append(tidy(text))
    return out


_JOIN = re.compile(r"(?<=\w) ([-/]) (?=\w)")  # WordPiece decoding spaces out "ground - glass", "and / or"
_PUNCT = re.compile(r" ([.,;:)%])|([(]) ")


def tidy(text: str) -> str:
    """Whitespace of a decoded report: single spaces, no space inside hyphenated words or before punctuation."""
    text = " ".join(text.split())
    return _PUNCT.sub(lambda m: m.group(1) or m.group(2), _JOIN.sub(r"\1", text))


# ------------------------------------------------------------------------------------- report model dirs
def packaged_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("ctvl_cli"))) / "weights" / DEFAULT_REPORT_MODEL


def resolve_dir(ref: str | None) -> Path:
    """A report model directory: ``ref`` itself, or the packaged ``ctvl-phantom-report`` (default)."""
    if ref is None or ref == DEFAULT_REPORT_MODEL:
        d = packaged_dir()
        if not (d / CARD).is_file():
            raise WeightsNotFoundError(
                f"the embedded report model {DEFAULT_REPORT_MODEL} is not packaged in this install",
                hint="train it with `make train-report-default`, or use --method template / retrieval",
            )
        return d
    d = Path(ref).expanduser()
    if not (d / CARD).is_file():
        raise InputError(
            f"not a report model directory (no {CARD})",
            path=d,
            hint=f"train one with `ctvl finetune report --out DIR`, or use {DEFAULT_REPORT_MODEL}",
        )
    return d


def read_card(d: Path) -> dict[str, Any]:
    try:
        card = json.loads((d / CARD).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"unreadable report card ({type(e).__name__})", path=d / CARD) from None
    if card.get("format") != FORMAT:
        raise InputError(f"unknown report model format {card.get('format')!r}", path=d / CARD)
    return card


def available(ref: str | None = None) -> bool:
    try:
        resolve_dir(ref)
        return True
    except (WeightsNotFoundError, InputError):
        return False


def save_dir(
    out: Path, net: ReportLM, tok, card: dict[str, Any], *, llm_train: str, half: bool = False
) -> None:
    """Write a report model directory (files replaced one by one; the card last)."""
    import shutil

    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in net.projector.state_dict().items()}
    if half:
        sd = {k: v.half() for k, v in sd.items()}
    save_file(sd, str(out / "projector.safetensors.tmp"))
    (out / "projector.safetensors.tmp").replace(out / "projector.safetensors")
    for sub in ("llm", "lora"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    if llm_train == "full":
        llm = net.llm
        if half:
            import copy

            llm = copy.deepcopy(llm).half()
        llm.save_pretrained(str(out / "llm"), safe_serialization=True)
    elif llm_train == "lora":
        net.llm.save_pretrained(str(out / "lora"))
    tok.save_pretrained(str(out / "tokenizer"))
    tmp = out / (CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(out / CARD)


def load_dir(d: Path, *, device: str | torch.device = "cpu"):
    """-> (ReportLM in eval mode, tokenizer, card, encoder model, encoder card). Checks that the encoder
    weights are the ones the projector was trained on."""
    from safetensors.torch import load_file

    from ctvl_cli.api.zeroshot import resolve_key
    from ctvl_cli.models.factory import create_model

    quiet_transformers()
    card = read_card(d)
    enc = card["encoder"]
    ecard, wpath, key = resolve_key(enc["model"])
    if key != enc["key"]:
        raise WeightsNotFoundError(
            f"report model {card['name']} was trained on features of {enc['name']} {enc['key'][:12]}, but that "
            f"model now resolves to {key[:12]} (other weights or preprocessing)",
            path=d,
            hint="retrain the report model (`make train-report-default` for the embedded one)",
        )
    encoder = create_model(ecard, weights_path=wpath, device=device)
    spec = card["projector"]
    proj = Projector(ProjectorSpec(**{**spec, "grid": tuple(spec["grid"])}))
    proj.load_state_dict({k: v.float() for k, v in load_file(str(d / "projector.safetensors")).items()})
    llm_info = card["llm"]
    if (d / "llm").is_dir():
        from transformers import AutoModelForCausalLM

        llm = AutoModelForCausalLM.from_pretrained(str(d / "llm"), dtype=torch.float32)
    else:
        llm, _ = load_llm(llm_info["source"])
        if (d / "lora").is_dir():
            try:
                from peft import PeftModel
            except ImportError:
                raise UsageError(
                    "this report model has a LoRA adapter: install peft (pip install 'ctvl[lora]')"
                ) from None
            llm = PeftModel.from_pretrained(llm, str(d / "lora"))
    tok = load_tokenizer(str(d / "tokenizer"))
    net = ReportLM(proj, llm, special_ids(tok)).float().eval().to(device)
    return net, tok, card, encoder, ecard
