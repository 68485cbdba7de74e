#!/usr/bin/python3
"""Writes garden-report/index.html from the files scripts/demo leaves there, and prints
the summary table (per model: bifurcation onset, MSD peak step, final perplexity)."""

import csv
import html
import json
import pathlib
import re
import sys


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def unmask_recovered(path):
    """(step, mean recovered over the prefix lengths) at the first and the last step."""
    frames = json.loads(path.read_text())["frames"]
    steps = sorted({f["step"] for f in frames})
    mean = {s: sum(f["recovered"] for f in frames if f["step"] == s) /
            sum(1 for f in frames if f["step"] == s) for s in steps}
    return mean[steps[0]], mean[steps[-1]]


def check_figures(report, page):
    """Every image the page shows is there and not empty: a missing figure fails the demo."""
    missing = [src for src in re.findall(r'<img src="([^"]+)"', page)
               if not (report / src).is_file() or (report / src).stat().st_size == 0]
    if missing:
        sys.exit(f"demo_report: figures missing or empty: {', '.join(missing)}")


def main():
    report = pathlib.Path(sys.argv[1])
    suite = pathlib.Path(sys.argv[2])
    # The sizes analysed, in the order the demo trains them (tiny, small; micro in tests).
    order = {"micro": 0, "tiny": 1, "small": 2}
    sizes = sorted((p.name[len("hist-"):-len(".png")] for p in report.glob("hist-*.png")),
                   key=lambda z: (order.get(z, 9), z))
    rows = []
    for size in sizes:
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
                "unmask": unmask_recovered(report / f"unmask-{name}.json"),
                "train": json.loads(train.read_text()) if train.exists() else {},
            })

    header = (f"{'model':24} {'steps':>5} {'onset':>6} {'MSD peak':>16} "
              f"{'ppl@0':>9} {'ppl final':>10} {'acc final':>9} {'unmask@0':>9} "
              f"{'unmask@last':>11} {'audit':>5}")
    print(header)
    for r in rows:
        onset = "none" if r["onset"] is None else str(r["onset"])
        print(f"{r['model']:24} {r['steps']:5d} {onset:>6} {r['msd_peak']:>16} "
              f"{r['ppl_first']:9.1f} {r['ppl_final']:10.2f} {r['acc_final']:9.3f} "
              f"{r['unmask'][0]:9.2f} {r['unmask'][1]:11.2f} {r['findings']:5d}")
    print(f"(perplexity and accuracy on the first {rows[0]['n']} held-out cloze "
          "examples; unmask = share of the held-out sentence's tokens recovered, mean "
          "over the prefix lengths; audit = findings)")

    def img(name, caption):
        return (f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    table = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{r['steps']}</td>"
        f"<td>{'none' if r['onset'] is None else r['onset']}</td><td>{r['msd_peak']}</td>"
        f"<td>{r['ppl_first']:.1f}</td><td>{r['ppl_final']:.2f}</td>"
        f"<td>{r['acc_final']:.3f}</td><td>{r['unmask'][0]:.2f}</td>"
        f"<td>{r['unmask'][1]:.2f}</td><td>{r['findings']}</td></tr>" for r in rows)
    def unmask_html(name):
        """Figure 5 as text: per step a line per prefix length, the prefix in black,
        the generated tokens in grey, those that agree with the sentence underlined."""
        data = json.loads((report / f"unmask-{name}.json").read_text())
        out, step = [], None
        for f in data["frames"]:
            if f["step"] != step:
                step = f["step"]
                out.append(f"<h4>step {step}</h4>")
            pieces = f.get("generated_pieces") or [f["generated"]]
            agree = f["agree"] if len(pieces) == len(f["agree"]) else [False] * len(pieces)
            gen = "".join(f'<span class="gen{" agree" if a else ""}">{html.escape(p)}</span>'
                          for p, a in zip(pieces, agree))
            out.append(f'<div class="um"><span class="k">k={f["k"]}</span> '
                       f'{html.escape(f["prefix"])}{gen} '
                       f'<span class="rec">{100 * f["recovered"]:.0f}%</span></div>')
        return '<div class="unmask">' + "".join(out) + "</div>"

    sections = []
    for size in sizes:
        parts = [f"<h2>fortune-{size}: standard (top) and deduplicated (bottom)</h2>",
                 img(f"hist-{size}.png", "Figure 2. embed_out.weight's density over training "
                     "(log colour), with the modes of the smoothed density: look for the "
                     "single mode splitting into branches, the onset dashed"),
                 img(f"msd-{size}.png", "Figure 3. Mean square displacement from step 0: "
                     "look for the weights moving away and partly returning (an interior "
                     "peak, dashed; a maximum at the last step is no peak)"),
                 img(f"msd-lag-{size}.png", "Time-averaged MSD by lag: how far the weights "
                     "move in a given number of steps"),
                 img(f"ppl-{size}.png", "Figure 4. Perplexity on held-out cloze examples, "
                     "linear and log: look for the fall and where it levels off")]
        for r in rows:
            name = r["model"]
            if f"-{size}" not in name:
                continue
            parts += [f"<h3>{html.escape(name)}</h3>",
                      img(f"matrix-{name}.png", "Figure 1 B. The first 512 rows of "
                          "embed_out.weight at the first and last step, one colour scale: "
                          "look for rows that drift together away from the rest"),
                      img(f"attention-{name}.png", "Figure 1 C. Layer 0's attention on a "
                          "held-out sentence (mean over heads), first and last step: look "
                          "for structure replacing the uniform causal mask"),
                      img(f"logits-{name}.png", "Figure 1 D. Mean next-token logits over the "
                          "sentence's positions at the first and last step: look for a few "
                          "tokens rising out of a flat start"),
                      img(f"unmask-{name}.png", "Figure 5. Causal unmasking: the sentence "
                          "regenerated from growing prefixes (black), generated tokens grey, "
                          "those that agree with the sentence underlined"),
                      unmask_html(name)]
        sections.append("".join(parts))
    files = "".join(f'<li><a href="{p.name}">{p.name}</a></li>'
                    for p in sorted(report.iterdir())
                    if p.suffix in (".csv", ".json", ".jsonl"))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Garden report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
img{{max-width:100%}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}
.unmask{{font-family:monospace;font-size:90%}}.um{{margin:2px 0}}
.k{{color:#555;display:inline-block;width:3.5em}}.gen{{color:#999}}
.gen.agree{{text-decoration:underline;color:#777}}.rec{{color:#555}}</style></head><body>
<h1>Garden report: the fortune suite</h1>
<p>GPT-NeoX models trained by <code>garden-train</code> with Pythia's recipe on the
Debian fortunes corpus (standard: with exact duplicates; deduped: deduplicated), analysed
through gardend as in <i>The Garden of Forking Paths</i>.</p>
<table><tr><th>model</th><th>steps</th><th>bifurcation onset</th><th>MSD peak step</th>
<th>perplexity at step 0</th><th>final perplexity</th><th>final accuracy</th>
<th>unmasked at step 0</th><th>unmasked at the last step</th>
<th>audit findings</th></tr>{table}</table>
{''.join(sections)}
<h2>Data</h2><ul>{files}</ul>
</body></html>
"""
    check_figures(report, page)
    (report / "index.html").write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
