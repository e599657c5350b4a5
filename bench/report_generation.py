"""Report generation on held-out phantoms (seed 3000; never used in training): the embedded report model
``ctvl-phantom-report`` (``--method lm``) against the two baselines, measured in the same run on the same scans:

* ``retrieval``: the report of the nearest training phantom (image->image cosine, ctvl-phantom embeddings), over
  the report model's own training set (``build/report-train``, seed 1000);
* ``template``: a structured report from ctvl-phantom's zero-shot findings, at P >= 0.5 and at per-finding
  thresholds chosen by ``zeroshot eval`` on the validation phantoms (``build/report-val``, seed 2000).

    python bench/report_generation.py [--n 100] [--write]

Metrics as `ctvl generate-report eval` computes them (clinical efficacy = labeler on both texts).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine, write_section

REPO = Path(__file__).resolve().parents[1]
CTVL = str(Path(sys.executable).with_name("ctvl"))
SEED = 3000


def run(*args: str) -> str:
    r = subprocess.run([CTVL, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"ctvl {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="held-out phantoms (seed 3000)")
    ap.add_argument("--train", type=Path, default=REPO / "build" / "report-train")
    ap.add_argument("--val", type=Path, default=REPO / "build" / "report-val")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    for d in (a.train, a.val):
        if not (d / "reports.csv").is_file():
            raise SystemExit(f"{d}: missing (run `make train-report-default` first)")
    from ctvl_cli.api.generate import evaluate_files

    test = DATA / f"report-heldout-{SEED}-{a.n}"
    if not (test / "reports.csv").is_file():
        run("phantom", str(test), "-n", str(a.n), "--seed", str(SEED), "--workers", "2", "-f", "json")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ctvl-bench-rep-") as tmp:
        t = Path(tmp)
        cache, idx = t / "train.h5", t / "idx"
        run("embed", str(a.train), "--cache", str(cache), "-j", "2", "-f", "json")
        run(
            "retrieve",
            "build",
            "--cache",
            str(cache),
            "--index",
            str(idx),
            "--reports",
            str(a.train / "reports.csv"),
        )
        labels = t / "findings.txt"
        from ctvl_cli.reports.labeler import FINDINGS

        labels.write_text("\n".join(FINDINGS) + "\n")
        vpred = t / "val_zs.csv"
        vpred.write_text(run("zeroshot", str(a.val), "--labels", str(labels), "-f", "csv"))
        thr = t / "thr.json"
        run("zeroshot", "eval", "--pred", str(vpred), "--truth", str(a.val / "labels.csv"), "--bootstrap", "0",
            "--thresholds-out", str(thr))  # fmt: skip
        methods = [
            ("lm: ctvl-phantom-report, greedy", ["--method", "lm"]),
            ("lm: ctvl-phantom-report, beam 4", ["--method", "lm", "--decoding", "beam", "--beams", "4"]),
            (
                "retrieval: nearest training phantom's report",
                ["--method", "retrieval", "--index", str(idx), "--cache", str(cache)],
            ),
            ("template: zero-shot findings, P >= 0.5", ["--method", "template"]),
            (
                "template: zero-shot findings, val-tuned thresholds",
                ["--method", "template", "--threshold", str(thr)],
            ),
        ]
        for label, extra in methods:
            t0 = time.perf_counter()
            pred = t / "pred.csv"
            pred.write_text(run("generate-report", str(test), *extra, "-f", "csv", "-j", "2"))
            secs = time.perf_counter() - t0
            m = evaluate_files(pred, test / "reports.csv").metrics
            ce = m["ce"]["macro"]
            rows.append((label, m, ce, secs))
            print(
                f"{label}: CE macro F1 {ce['f1']:.3f}, BLEU-4 {m['bleu_4']:.3f} ({secs:.0f} s)",
                file=sys.stderr,
            )
    card = json.loads(
        (REPO / "ctvl_cli" / "weights" / "ctvl-phantom-report" / "report_card.json").read_text()
    )
    lines = [
        f"Machine: {machine()}.",
        "",
        f"{a.n} held-out phantoms (seed {SEED}); report model trained on {card['training']['pairs']} "
        f"(best epoch {card['training'].get('best_epoch')}, val CE F1 {card['training'].get('val_ce_f1', float('nan')):.3f}). "
        "METEOR: not computed (NLTK's WordNet data is not installed and cannot be downloaded here).",
        "",
        "| method | BLEU-1 | BLEU-4 | ROUGE-L | CE macro P | CE macro R | **CE macro F1** | CE micro F1 | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, m, ce, secs in rows:
        lines.append(
            f"| {label} | {m['bleu_1']:.3f} | {m['bleu_4']:.3f} | {m['rouge_l']:.3f} | {ce['precision']:.3f} | "
            f"{ce['recall']:.3f} | **{ce['f1']:.3f}** | {ce['micro_f1']:.3f} | {secs:.0f} |"
        )
    per = ["", "Per-finding CE F1 (lm greedy / retrieval / template val-tuned):", ""]
    per += ["| finding | positives | lm | retrieval | template |", "|---|---|---|---|---|"]
    by = {label.split(":")[0] + (" beam" if "beam" in label else "") + (" tuned" if "tuned" in label else ""): m for label, m, _, _ in rows}  # fmt: skip
    for i, r in enumerate(by["lm"]["ce"]["rows"]):

        def f(v):
            return "n/a" if v is None else f"{v:.2f}"

        per.append(
            f"| {r['finding']} | {r['support']} | {f(r['f1'])} | {f(by['retrieval']['ce']['rows'][i]['f1'])} | "
            f"{f(by['template tuned']['ce']['rows'][i]['f1'])} |"
        )
    f1s = [(r["finding"], r["f1"] or 0, q["f1"] or 0) for r, q in zip(by["lm"]["ce"]["rows"], by["retrieval"]["ce"]["rows"])]  # fmt: skip
    better, worse = [n for n, a, b in f1s if a > b], [n for n, a, b in f1s if a < b]
    per += ["", f"lm greedy above retrieval on: {', '.join(better) or 'none'}.", ""]
    per += [f"lm greedy below retrieval on: {', '.join(worse) or 'none'}."]
    text = "\n".join(lines + per)
    print(text)
    if a.write:
        write_section(
            "report-generation",
            "Report generation on held-out phantoms — `bench/report_generation.py`",
            f"python bench/report_generation.py --n {a.n} --write",
            text,
        )


if __name__ == "__main__":
    main()
