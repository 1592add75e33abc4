"""The result table of ``flallm-experiment``: mean ± std over seeds, as Markdown, CSV and JSON.

Per row: BLEU-1..4 and ROUGE-L of the test split (beam 5, original references), the dev-selected
checkpoint (epoch, dev BLEU), updates, training time (every training of the row's chain, shared ones
included, as measured when they ran) and the parameters trained (from the checkpoint's optimizer state).
Beside the scores, the same model's BLEU-4 and ROUGE-L with the video masked (black frames at decoding), and
whether the row looks at the video (:func:`looks_at_video`: flagged **no** when masking changes nothing
beyond the seeds' spread).
The JSON also holds every seed's values and the checkpoints they come from.
"""
import csv
import io
import json
import statistics
from typing import Dict, List, Optional, Sequence

from flallm_plugin.data.atomic_file import atomic_write_text

METRICS = [("bleu1", "BLEU-1"), ("bleu2", "BLEU-2"), ("bleu3", "BLEU-3"), ("bleu4", "BLEU-4"),
           ("bleu4_masked", "BLEU-4, video masked"), ("rouge_l", "ROUGE-L"), ("rouge_l_masked", "ROUGE-L, video masked"), ("dev_bleu", "dev BLEU (selected)"), ("epoch", "selected epoch"),
           ("updates", "updates"), ("train_seconds", "training time (s)"), ("trained_params", "parameters trained")]


def mean_std(values: Sequence[float]) -> Dict:
    vals = [float(v) for v in values]
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}


def looks_at_video(entry: Dict) -> Optional[bool]:
    """The grounding check: False when the row's BLEU-4 with the video masked (black frames at decoding) is within
    its seeds' spread of the real one (mean(real) - mean(masked) <= std(real); with one seed: real <= masked);
    None for a row without video (gloss2text)."""
    if "bleu4_masked" not in entry:
        return None
    real, masked = entry["bleu4"], entry["bleu4_masked"]
    return real["mean"] - masked["mean"] > real["std"]


def summarize(rows, per_seed: Dict[str, List[Dict]]) -> List[Dict]:
    """One entry per row with results: mean/std of every metric over its seeds, the grounding check and the
    seeds' values."""
    out = []
    for row in rows:
        seeds = per_seed.get(row.name) or []
        if not seeds:
            continue
        entry = {
            "row": row.name, "table": row.table, "trains": row.trains,
            **{key: mean_std([s[key] for s in seeds]) for key, _ in METRICS if all(s.get(key) is not None for s in seeds)},
        }
        out.append({**entry, "looks_at_video": looks_at_video(entry), "seeds": seeds})
    return out


def looks_cell(value: Optional[bool]) -> str:
    return {None: "", True: "yes", False: "**no**"}[value]


def fmt(stat: Dict, key: str) -> str:
    if key == "trained_params":
        return f"{stat['mean']:,.0f}" + (f" ± {stat['std']:,.0f}" if stat["n"] > 1 and stat["std"] else "")
    digits = 0 if key in ("updates", "train_seconds", "epoch") else 2
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['std']:.{digits}f}" if stat["n"] > 1 else "")


def markdown(summary: List[Dict], title: str) -> str:
    head = ["row", "table", *[label for _, label in METRICS], "looks at the video", "trains"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        cells = [r["row"], r["table"], *[fmt(r[k], k) if k in r else "" for k, _ in METRICS],
                 looks_cell(r.get("looks_at_video")), r["trains"]]
        lines.append("| " + " | ".join(cells) + " |")
    flagged = [r["row"] for r in summary if r.get("looks_at_video") is False]
    if flagged:
        lines += ["", f"**no**: BLEU-4 with the video masked (black frames at decoding) is within the seeds' spread of "
                      f"the real one: {', '.join(flagged)} translate(s) from the targets' language, not the video."]
    return "\n".join(lines) + "\n"


def csv_text(summary: List[Dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "table", "seeds"] + [f"{k}_{s}" for k, _ in METRICS for s in ("mean", "std")]
               + ["looks_at_video", "trains"])
    for r in summary:
        n = len(r["seeds"])
        looks = r.get("looks_at_video")
        w.writerow([r["row"], r["table"], n]
                   + [v for k, _ in METRICS for v in ((r[k]["mean"], r[k]["std"]) if k in r else ("", ""))]
                   + ["" if looks is None else int(looks), r["trains"]])
    return buf.getvalue()


def write_tables(out_dir: str, summary: List[Dict], meta: Dict, title: str):
    """``results.md``, ``results.csv``, ``results.json`` under ``out_dir``, each written atomically."""
    import os

    atomic_write_text(os.path.join(out_dir, "results.md"), lambda f: f.write(markdown(summary, title)))
    atomic_write_text(os.path.join(out_dir, "results.csv"), lambda f: f.write(csv_text(summary)))
    atomic_write_text(os.path.join(out_dir, "results.json"),
                      lambda f: json.dump({"meta": meta, "rows": summary}, f, indent=1))
