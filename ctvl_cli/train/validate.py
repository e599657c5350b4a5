"""Per-epoch validation for ``finetune clip``: report->image Recall@K on held-out pairs and, when a labels CSV
is given, zero-shot mean AUROC with CT-CLIP's prompt protocol ("{X} is present." / "{X} is not present.")."""

from __future__ import annotations

from ctvl_cli.errors import InputError
from ctvl_cli.zeroshot.truth import read_label_table, scan_key


class Validator:
    def __init__(self, pairs_csv, labels_csv, spec, *, workers: int = 0, image_root=None) -> None:
        import torch

        from ctvl_cli.train.data import PairDataset, collate, read_pairs

        self.pairs = read_pairs(pairs_csv, image_root=image_root)
        loader = torch.utils.data.DataLoader(
            PairDataset(self.pairs, spec), batch_size=8, num_workers=workers, collate_fn=collate
        )
        self.images = torch.cat([x for x, *_ in loader])
        self.labels = None
        self.metric_name = "r2i_R@5"
        if labels_csv:
            names, table = read_label_table(labels_csv)
            missing = [p.id for p in self.pairs if scan_key(p.id) not in table]
            if missing:
                raise InputError(
                    f"{len(missing)} validation scans have no labels, first {missing[0]}", path=labels_csv
                )
            import numpy as np

            self.finding_names = names
            self.labels = np.array([table[scan_key(p.id)] for p in self.pairs])
            self.metric_name = "zs_auroc"

    def run(self, model, tokenize, dev) -> dict[str, float]:
        import numpy as np
        import torch

        from ctvl_cli.metrics import auroc
        from ctvl_cli.retrieval.metrics import recall_at_k

        with torch.no_grad():
            img = torch.cat(
                [model.encode_image(self.images[i : i + 16].to(dev)) for i in range(0, len(self.images), 16)]
            )
            txt = torch.cat(
                [
                    model.encode_text(*tokenize([p.text for p in self.pairs[i : i + 64]]))
                    for i in range(0, len(self.pairs), 64)
                ]
            )
            img_n = torch.nn.functional.normalize(img.float(), dim=-1).cpu().numpy()
            txt_n = torch.nn.functional.normalize(txt.float(), dim=-1).cpu().numpy()
            out = {f"r2i_R@{k}": v for k, v in recall_at_k(txt_n, img_n, (1, 5, 10)).items()}
            if self.labels is not None:
                from ctvl_cli.zeroshot.labels import findings_from_names
                from ctvl_cli.zeroshot.scoring import zeroshot_probabilities

                fs = findings_from_names(self.finding_names)
                pos = model.encode_text(*tokenize([f.positive[0] for f in fs])).float().cpu().numpy()
                neg = model.encode_text(*tokenize([f.negative[0] for f in fs])).float().cpu().numpy()
                prob = zeroshot_probabilities(img_n, pos, neg, float(model.logit_scale()))
                aucs = [auroc(self.labels[:, k], prob[:, k]) for k in range(len(fs))]
                out["zs_auroc"] = float(np.nanmean(aucs))
                out["zs_auroc_per_finding"] = {f.name: round(a, 4) for f, a in zip(fs, aucs)}
        return out
