"""Starting, watching and stopping a gardend for the integration tests."""

import os
import signal
import subprocess
import tempfile
import time
import unittest


def skip_unless_built(*binaries):
    """Skips the test (unittest.SkipTest) naming the first of `binaries` not built."""
    for path in binaries:
        if not os.path.isfile(path):
            raise unittest.SkipTest(f"{path} is not built")


def start_server(gardend, args, log_path, port_file, timeout=30):
    """Starts gardend on a free loopback port; returns (process, port)."""
    return start_listening([gardend, "--listen", "127.0.0.1:0", "--port-file", port_file,
                            *args], log_path, port_file, "gardend", timeout)


def start_listening(cmd, log_path, port_file, what, timeout=30):
    """Starts cmd, which writes the port it listens on to port_file (gardend, garden
    ui), its output into log_path; returns (process, port) once the port is written."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                text = f.read().strip()
            if text:
                return proc, int(text)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=10)
    with open(log_path, errors="replace") as f:
        raise RuntimeError(f"{what} did not start (rc {proc.returncode}):\n{f.read()}")


# Keys of an output record that name the model rather than describe the
# result, for comparing one analysis of the same weights under two names.
NAMING_KEYS = frozenset({"size", "suite", "variant", "model", "name", "repo_id", "layout"})


def strip_names(value, keys=NAMING_KEYS):
    """The record (dicts and lists, recursively) without the naming keys."""
    if isinstance(value, dict):
        return {k: strip_names(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [strip_names(v, keys) for v in value]
    return value


def stop_server(proc, timeout):
    """SIGTERM; returns (exit status, seconds taken). Kills it if it overstays."""
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return None, time.monotonic() - start
    return rc, time.monotonic() - start


def run_concurrently(cmd, count, timeout, text=False):
    """Runs `count` copies of a command at once; returns their (returncode,
    stdout, stderr) in start order, killing them all if one overstays."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=text) for _ in range(count)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append((proc.returncode, out, err))
    return results


class GardendTestCase(unittest.TestCase):
    """A test class sharing one gardend: setUpClass sets cls.server, cls.log_path
    and cls._tmp (a TemporaryDirectory); every test fails if the server died, and
    the server must exit 0 within 10 s of SIGTERM at the end."""

    @classmethod
    def set_up_server(cls, gardend, prefix, server_args):
        """Makes cls.base, writes the fixtures there (cls._write_fixtures),
        starts gardend with server_args() and sets cls.server, cls.port,
        cls.addr and cls.log_path; the folder is removed if any of it fails."""
        cls._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        cls.base = os.path.realpath(cls._tmp.name)
        try:
            cls._write_fixtures()
            cls.log_path = os.path.join(cls.base, "gardend.log")
            cls.server, cls.port = start_server(gardend, server_args(), cls.log_path,
                                                os.path.join(cls.base, "port"))
        except BaseException:
            cls._tmp.cleanup()
            raise
        cls.addr = f"127.0.0.1:{cls.port}"

    @classmethod
    def tearDownClass(cls):
        died = cls.server.poll()
        rc, took = stop_server(cls.server, 10) if died is None else (died, 0.0)
        log = cls.log_tail()
        cls._tmp.cleanup()
        if died is not None:
            raise AssertionError(f"gardend died during the tests (exit {died}):\n{log}")
        if rc != 0:
            raise AssertionError(f"gardend exited with {rc} {took:.1f} s after SIGTERM "
                                 f"(expected 0 within 10 s):\n{log}")

    @classmethod
    def log_tail(cls, lines=30):
        with open(cls.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def setUp(self):
        if self.server.poll() is not None:
            self.fail(f"gardend is dead (exit {self.server.returncode}):\n{self.log_tail()}")

    def tearDown(self):
        if self.server.poll() is not None:
            self.fail(f"gardend died in this test (exit {self.server.returncode}):\n"
                      f"{self.log_tail()}")
