"""The demo's report end to end on a micro suite: garden-train trains both variants,
gardend serves them, scripts/demo_analysis.sh runs the demo's own analysis and
scripts/demo_report.py writes index.html. The page must show every figure of the
paper (1 B, 1 C, 1 D, 2, 3, 4, 5) for every model, each file present and not empty,
Figure 5 also as text, and the summary must name every model."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import gardend_harness as harness

SOURCE = os.path.realpath(os.environ.get("GARDEN_SOURCE",
                                         os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
CORPUS = os.environ.get("GARDEN_FORTUNES", "/usr/share/games/fortunes")
MODELS = ["fortune-micro", "fortune-micro-deduped"]


@unittest.skipUnless(os.path.isdir(CORPUS), f"no fortunes corpus at {CORPUS}")
class DemoReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.skip_unless_built(*(os.path.join(BIN, b) for b in ("garden-train", "gardend",
                                                                   "garden")))
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-demo-report-")
        cls.base = cls._tmp.name
        cls.suite = os.path.join(cls.base, "suite")
        cls.report = os.path.join(cls.base, "report")
        os.makedirs(cls.report)
        subprocess.run([os.path.join(BIN, "garden-train"), "--preset", "micro", "--variant",
                        "standard,deduped", "--seed", "1", "--out", cls.suite, "--corpus",
                        CORPUS, "--threads", "2"], check=True, capture_output=True, timeout=300)
        dataset = os.path.join(cls.suite, "fortune-lambada.jsonl")
        with open(dataset) as f:
            cls.sentence = json.loads(f.readline())["text"]
        cls.server, port = harness.start_server(
            os.path.join(BIN, "gardend"),
            ["--checkpoints", cls.suite, "--dataset", f"lambada={dataset}", "--threads", "2"],
            os.path.join(cls.base, "gardend.log"), os.path.join(cls.base, "port"))
        script = f"""set -euo pipefail
stage() {{ echo "== $*"; }}
bin={BIN}; server=127.0.0.1:{port}; report={cls.report}; python=/usr/bin/python3
variants=(standard deduped); ppl_limit=20; sentence="$GARDEN_SENTENCE"
. {SOURCE}/scripts/demo_analysis.sh
analyse micro
"""
        try:
            cls.analysis = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                          timeout=300, env={**os.environ,
                                                            "GARDEN_SENTENCE": cls.sentence})
            cls.summary = subprocess.run(
                [sys.executable, os.path.join(SOURCE, "scripts", "demo_report.py"), cls.report,
                 cls.suite], capture_output=True, text=True, timeout=120)
        finally:
            harness.stop_server(cls.server, 10)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_the_page_shows_every_figure(self):
        self.assertEqual(self.analysis.returncode, 0, self.analysis.stderr[-3000:])
        self.assertEqual(self.summary.returncode, 0, self.summary.stderr[-3000:])
        with open(os.path.join(self.report, "index.html"), encoding="utf-8") as f:
            page = f.read()
        shown = re.findall(r'<img src="([^"]+)"', page)
        want = [f"{fig}-micro.png" for fig in ("hist", "msd", "msd-lag", "ppl")]
        for name in MODELS:
            want += [f"{fig}-{name}.png" for fig in ("matrix", "attention", "logits", "unmask")]
        self.assertEqual(sorted(shown), sorted(want))
        for src in shown:
            path = os.path.join(self.report, src)
            self.assertGreater(os.path.getsize(path), 1000, src)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", src)
        for figure in ("Figure 1 B", "Figure 1 C", "Figure 1 D", "Figure 2", "Figure 3",
                       "Figure 4", "Figure 5"):
            self.assertIn(figure, page)

    def test_figure_5_is_also_text(self):
        with open(os.path.join(self.report, "index.html"), encoding="utf-8") as f:
            page = f.read()
        total = 0
        for name in MODELS:
            with open(os.path.join(self.report, f"unmask-{name}.json")) as f:
                frames = json.load(f)["frames"]
            self.assertTrue(frames)
            total += len(frames)
            for frame in frames:
                pieces = "".join(frame["generated_pieces"])
                self.assertEqual(len(frame["generated_pieces"]), len(frame["agree"]))
                self.assertTrue(pieces)
        self.assertEqual(page.count('<div class="um">'), total)

    def test_the_summary_names_every_model(self):
        lines = self.summary.stdout.splitlines()
        self.assertTrue(lines[0].startswith("model"), self.summary.stdout)
        self.assertEqual([l.split()[0] for l in lines[1:1 + len(MODELS)]], MODELS)


if __name__ == "__main__":
    unittest.main()
