"""Training data: image–report pair tables and the dataset that decodes and preprocesses volumes with the
same engine ``embed`` uses, in DataLoader worker processes.

Pair tables (CSV): an image column (``image``, ``path``, ``volume``, ``VolumeName``) and a text column
(``text``, ``report_text``, ``report``, or CT-RATE's ``Findings_EN`` + ``Impressions_EN``). Relative image
paths are resolved against the CSV's folder, then against ``--image-root`` if given.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ctvl_cli.api.reports import text_getter
from ctvl_cli.errors import InputError

IMAGE_COLUMNS = ("image", "path", "volume", "volumename")


@dataclass(frozen=True)
class Pair:
    image: str
    text: str
    id: str


def read_pairs(
    path: str | Path, *, image_root: str | Path | None = None, check_files: bool = True
) -> list[Pair]:
    p = Path(path)
    if not p.is_file():
        raise InputError("pairs table not found", path=p, hint="a CSV with columns image,text")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = {f.lower().strip(): f for f in (reader.fieldnames or [])}
            img_col = next((fields[c] for c in IMAGE_COLUMNS if c in fields), None)
            get_text = text_getter(fields)
            if img_col is None or get_text is None:
                raise InputError(
                    f"needs an image column and a text column, found {sorted(fields.values())}",
                    path=p,
                    hint="columns image,text (or VolumeName + Findings_EN/Impressions_EN)",
                )
            out: list[Pair] = []
            missing: list[str] = []
            for i, r in enumerate(reader):
                text = get_text(r)
                img = (r.get(img_col) or "").strip()
                if not img or not text:
                    raise InputError(
                        f"line {i + 2}: empty image or text", path=p, hint="every pair needs both"
                    )
                ip = Path(img).expanduser()
                if not ip.is_absolute():
                    cand = p.parent / ip
                    if image_root is not None and not cand.exists():
                        cand = Path(image_root) / ip
                    ip = cand
                if check_files and not ip.exists():
                    missing.append(str(ip))
                out.append(Pair(image=str(ip), text=text, id=Path(img).name))
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text ({e.reason})", path=p) from None
    except csv.Error as e:
        raise InputError(f"malformed CSV ({e})", path=p) from None
    if missing:
        raise InputError(
            f"{len(missing)} image(s) not found, first: {missing[0]}",
            path=p,
            hint="paths are relative to the CSV's folder; use --image-root for another base",
        )
    if not out:
        raise InputError("no pairs", path=p)
    return out


_SENT = re.compile(r"(?<=[.!?])\s+|\s*•\s*")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text) if s and s.strip()]


def sample_sentences(text: str, rng: random.Random, *, keep_all_p: float = 0.5) -> str:
    """Text augmentation: with probability ``keep_all_p`` the whole report, otherwise a random non-empty
    subset of its sentences in random order (so short, prompt-like texts are seen in training)."""
    if rng.random() < keep_all_p:
        return text
    sents = split_sentences(text)
    if len(sents) <= 1:
        return text
    k = rng.randint(1, len(sents))
    return " ".join(rng.sample(sents, k))


def load_input(path: str, spec):
    """Decode a volume and preprocess it as the card declares, on the CPU (DataLoader workers use one thread each;
    the main process keeps its threads for compute)."""
    import torch

    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.preprocess.engine import preprocess

    if torch.utils.data.get_worker_info() is not None:
        torch.set_num_threads(1)
    return preprocess(load_volume(path), spec, device="cpu")


class PairDataset:
    """Map-style dataset: index -> (preprocessed image tensor (1, *shape), text, index, dense targets or None).
    Failures raise InputError naming the file (training must not silently drop data)."""

    def __init__(
        self,
        pairs: list[Pair],
        spec,
        *,
        text_aug: bool = False,
        text_whole: float = 0.5,
        seed: int = 0,
        store=None,
        aug=None,
    ) -> None:
        self.pairs, self.spec, self.text_aug, self.seed = pairs, spec, text_aug, seed
        self.aug = aug if aug is not None and aug.active else None  # a train.augment.SpatialAug
        self.text_whole = text_whole
        self.store = store  # an InputStore holding preprocessed volumes, or None to decode each time
        # (n, L, *grid) uint8 dense mask targets (train.masks), moved with the augmentation
        self.targets = None
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        pr = self.pairs[i]
        x = self.store[i] if self.store is not None else load_input(pr.image, self.spec)
        t = None if self.targets is None else self.targets[i]
        if self.aug is not None:
            from ctvl_cli.train import augment

            shift, rot, scale = augment.draw(self.aug, hash((self.seed, self.epoch, i, 1)))
            x = augment.apply(x, self.spec.spacing, self.spec.pad_value, shift, rot, scale)
            if t is not None:
                from ctvl_cli.train.masks import augment_targets

                t = augment_targets(t, self.spec.spacing, self.spec.shape, shift, rot, scale)
        text = pr.text
        if self.text_aug:
            text = sample_sentences(
                text, random.Random(hash((self.seed, self.epoch, i)) & 0xFFFFFFFF), keep_all_p=self.text_whole
            )
        return x, text, i, t


def collate(batch):
    import torch

    xs, texts, idx, ts = zip(*batch)
    return torch.stack(xs), list(texts), torch.tensor(idx), None if ts[0] is None else torch.stack(ts)
