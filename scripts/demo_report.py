#!/usr/bin/python3
"""Writes garden-report/index.html from the files scripts/demo leaves there, and prints
the summary table (per model: bifurcation onset, MSD peak step, final perplexity)."""

import csv
import html
import json
import pathlib
import sys


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main():
    report = pathlib.Path(sys.argv[1])
    suite = pathlib.Path(sys.argv[2])
    rows = []
    for size in ("tiny", "small"):
        msd = json.loads((report / f"msd-{size}.json").read_text())["models"]
        ppl = read_csv(report / f"ppl-{size}.csv")
        for entry in msd:
            name = entry["model"]
            bif = json.loads((report / f"bifurcation-{name}.json").read_text())
            audit = json.loads((report / f"audit-{name}.json").read_text())
            mine = [r for r in ppl if r["model"] == name]
            train = suite / name / "train.json"
            rows.append({
                "model": name,
                "steps": len(entry["points"]),
                "onset": bif["onset"],
                # An interior maximum only; else what the curve does.
                "msd_peak": (str(entry["peak"]["step"]) if entry["peak"] else
                             f"none ({entry['monotonic'] or 'at an end'})"),
                "ppl_first": float(mine[0]["perplexity"]),
                "ppl_final": float(mine[-1]["perplexity"]),
                "acc_final": float(mine[-1]["accuracy"]),
                "n": int(mine[-1]["n"]),
                "findings": len(audit["findings"]),
                "train": json.loads(train.read_text()) if train.exists() else {},
            })

    header = (f"{'model':24} {'steps':>5} {'onset':>6} {'MSD peak':>9} "
              f"{'ppl@0':>9} {'ppl final':>10} {'acc final':>9} {'audit':>5}")
    print(header)
    for r in rows:
        onset = "none" if r["onset"] is None else str(r["onset"])
        print(f"{r['model']:24} {r['steps']:5d} {onset:>6} {r['msd_peak']:>9} "
              f"{r['ppl_first']:9.1f} {r['ppl_final']:10.2f} {r['acc_final']:9.3f} "
              f"{r['findings']:5d}")
    print(f"(perplexity and accuracy on the first {rows[0]['n']} held-out cloze "
          "examples; audit = findings)")

    def img(name, caption):
        return (f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    table = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{r['steps']}</td>"
        f"<td>{'none' if r['onset'] is None else r['onset']}</td><td>{r['msd_peak']}</td>"
        f"<td>{r['ppl_first']:.1f}</td><td>{r['ppl_final']:.2f}</td>"
        f"<td>{r['acc_final']:.3f}</td><td>{r['findings']}</td></tr>" for r in rows)
    sections = []
    for size in ("tiny", "small"):
        sections.append(
            f"<h2>fortune-{size}: standard (top) and deduplicated (bottom)</h2>"
            + img(f"hist-{size}.png", "embed_out.weight density over training, with the "
                  "modes of the smoothed density (bifurcation branches) and the onset")
            + img(f"msd-{size}.png", "mean square displacement from step 0, an interior "
                  "peak dashed (a maximum at the last step is no peak)")
            + img(f"msd-lag-{size}.png", "time-averaged MSD by lag")
            + img(f"ppl-{size}.png", "perplexity on held-out cloze examples, linear and log"))
    files = "".join(f'<li><a href="{p.name}">{p.name}</a></li>'
                    for p in sorted(report.iterdir())
                    if p.suffix in (".csv", ".json", ".jsonl"))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Garden report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
img{{max-width:100%}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>Garden report: the fortune suite</h1>
<p>GPT-NeoX models trained by <code>garden-train</code> with Pythia's recipe on the
Debian fortunes corpus (standard: with exact duplicates; deduped: deduplicated), analysed
through gardend as in <i>The Garden of Forking Paths</i>.</p>
<table><tr><th>model</th><th>steps</th><th>bifurcation onset</th><th>MSD peak step</th>
<th>perplexity at step 0</th><th>final perplexity</th><th>final accuracy</th>
<th>audit findings</th></tr>{table}</table>
{''.join(sections)}
<h2>Data</h2><ul>{files}</ul>
</body></html>
"""
    (report / "index.html").write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
