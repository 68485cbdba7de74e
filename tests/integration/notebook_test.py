"""docs/notebooks/forking-paths.ipynb executed headless on a micro suite: garden-train
trains both variants, gardend serves them (with the held-out cloze set as "lambada") and
`jupyter nbconvert --execute` runs every cell through garden_client. Any error fails;
every figure cell (tagged figure-*) must show a PNG. The committed notebook itself must
be valid nbformat 4 with its outputs cleared.

Skips, saying why, without jupyter-nbconvert or ipykernel (Debian: jupyter-nbconvert,
python3-ipykernel), the fortunes corpus, garden_client (PYTHONPATH=<build>/python, as
ctest sets it) or matplotlib."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import gardend_harness as harness

SOURCE = os.path.realpath(os.environ.get("GARDEN_SOURCE",
                                         os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
CORPUS = os.environ.get("GARDEN_FORTUNES", "/usr/share/games/fortunes")
NOTEBOOK = os.path.join(SOURCE, "docs", "notebooks", "forking-paths.ipynb")
# The figure cells, by their tags.
FIGURES = ["figure-2", "figure-3", "figure-4", "figure-1b", "figure-1c", "figure-1d",
           "figure-5"]


def python_path():
    """PYTHONPATH for the kernel: ctest's (<build>/python), else <bin>/../python; absolute,
    since the kernel runs in docs/notebooks."""
    given = os.environ.get("PYTHONPATH") or os.path.join(os.path.dirname(BIN), "python")
    return os.pathsep.join(os.path.abspath(p) for p in given.split(os.pathsep) if p)


def missing():
    """Why the notebook cannot run here, or None."""
    if not (shutil.which("jupyter-nbconvert") and shutil.which("jupyter")):
        return "no jupyter-nbconvert (Debian: jupyter-nbconvert)"
    for module, package in (("ipykernel", "python3-ipykernel"), ("nbformat", "python3-nbformat"),
                            ("matplotlib", "python3-matplotlib")):
        if importlib.util.find_spec(module) is None:
            return f"no {module} (Debian: {package})"
    if not os.path.isdir(CORPUS):
        return f"no fortunes corpus at {CORPUS} (Debian: fortunes)"
    probe = subprocess.run([sys.executable, "-c", "import garden_client.plot"],
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": python_path()})
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"garden_client does not import from PYTHONPATH={python_path()}: {last}"
    return None


class CommittedNotebookTest(unittest.TestCase):
    """What is committed: nbformat 4, valid, no outputs, every figure cell tagged."""

    def test_valid_and_cleared(self):
        if importlib.util.find_spec("nbformat") is None:
            self.skipTest("no nbformat (Debian: python3-nbformat)")
        import nbformat
        nb = nbformat.read(NOTEBOOK, as_version=4)
        nbformat.validate(nb)
        self.assertEqual(nb.nbformat, 4)
        self.assertEqual(nb.metadata.kernelspec.name, "python3")
        tags = []
        for cell in nb.cells:
            tags += cell.metadata.get("tags", [])
            if cell.cell_type == "code":
                self.assertEqual(cell.outputs, [], f"cell {cell.id} has outputs")
                self.assertIsNone(cell.execution_count, f"cell {cell.id} was executed")
        self.assertEqual(sorted(t for t in tags if t.startswith("figure-")), sorted(FIGURES))


class ExecutedNotebookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.skip_unless_built(*(os.path.join(BIN, b) for b in ("garden-train", "gardend")))
        why = missing()
        if why:
            raise unittest.SkipTest(why)
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-notebook-")
        base = cls._tmp.name
        suite = os.path.join(base, "suite")
        subprocess.run([os.path.join(BIN, "garden-train"), "--preset", "micro", "--variant",
                        "standard,deduped", "--seed", "1", "--out", suite, "--corpus", CORPUS,
                        "--threads", "2"], check=True, capture_output=True, timeout=300)
        dataset = os.path.join(suite, "fortune-lambada.jsonl")
        server, port = harness.start_server(
            os.path.join(BIN, "gardend"),
            ["--checkpoints", suite, "--dataset", f"lambada={dataset}", "--threads", "2"],
            os.path.join(base, "gardend.log"), os.path.join(base, "port"))
        env = {**os.environ, "GARDEN_SERVER": f"127.0.0.1:{port}", "GARDEN_SUITE": "fortune",
               "GARDEN_PPL_LIMIT": "20", "PYTHONPATH": python_path(), "MPLBACKEND": "Agg",
               "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "IPYTHONDIR": os.path.join(base, "ipython"),
               "JUPYTER_RUNTIME_DIR": os.path.join(base, "runtime")}
        env.pop("GARDEN_TOKEN", None)
        env.pop("GARDEN_SENTENCE", None)
        cls.executed = os.path.join(base, "executed.ipynb")
        start = time.monotonic()
        try:
            cls.nbconvert = subprocess.run(
                ["jupyter", "nbconvert", "--to", "notebook", "--execute",
                 "--ExecutePreprocessor.timeout=300", "--output-dir", base, "--output",
                 "executed", NOTEBOOK], capture_output=True, text=True, timeout=600, env=env)
        finally:
            cls.seconds = time.monotonic() - start
            cls.server_rc, _ = harness.stop_server(server, 10)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def cells(self):
        self.assertEqual(self.nbconvert.returncode, 0,
                         f"nbconvert --execute failed:\n{self.nbconvert.stderr[-6000:]}")
        with open(self.executed, encoding="utf-8") as f:
            return json.load(f)["cells"]

    def test_runs_without_errors(self):
        for cell in self.cells():
            for output in cell.get("outputs", []):
                self.assertNotEqual(output["output_type"], "error",
                                    f"cell {cell.get('id')}: {output.get('ename')}: "
                                    f"{output.get('evalue')}")
        self.assertEqual(self.server_rc, 0, "gardend did not stop cleanly")
        print(f"\nnotebook executed in {self.seconds:.1f} s", file=sys.stderr)

    def test_every_figure_cell_shows_a_png(self):
        shown = {}
        for cell in self.cells():
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag in FIGURES:
                    shown[tag] = sum(1 for o in cell.get("outputs", [])
                                     if "image/png" in o.get("data", {}))
        self.assertEqual(sorted(shown), sorted(FIGURES))
        for tag, images in shown.items():
            self.assertGreater(images, 0, f"{tag} shows no image/png")
        # Figure 1 C: one figure per variant and end step (2 x 2 on the micro suite).
        self.assertEqual(shown["figure-1c"], 4)

    def test_models_of_the_suite_are_analysed(self):
        text = "".join("".join(o.get("text", "")) for cell in self.cells()
                       for o in cell.get("outputs", []) if o["output_type"] == "stream")
        for name in ("fortune-micro ", "fortune-micro-deduped"):
            self.assertIn(name, text)
        self.assertIn("datasets: lambada", text)


if __name__ == "__main__":
    unittest.main()
