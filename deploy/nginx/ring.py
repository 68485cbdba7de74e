#!/usr/bin/python3
"""Which gardend replica nginx's `hash $http_x_garden_model consistent` sends
each model to, and where each model goes when a replica dies.

This is nginx's ketama ring (src/http/modules/ngx_http_upstream_hash_module.c,
unchanged since `consistent` came in 1.7.2; read in 1.22 and 1.31): a `server`
string "HOST:PORT" of weight w gets the points p_k = crc32(HOST "\\0" PORT
le32(p_k-1)) for k = 1 .. 160 w, with p_0 = 0; the points are sorted and
duplicates dropped. A key goes to the first point >= crc32(key), wrapping
around; a server that is down or already tried is skipped by moving on to the
next point (after 20 skips nginx falls back to round-robin).
tests/integration/scaleout_test.py checks this against a real nginx. The
routing depends only on the server strings as written in the
config, so check the balance of a deployment before starting it:

    deploy/nginx/ring.py --config deploy/k8s/garden-proxy.yaml
    deploy/nginx/ring.py --replica 127.0.0.1:50051 --replica 127.0.0.1:50052 \\
        pythia/70m/deduped pythia/1b/standard

Models default to Pythia's 16 (8 sizes x standard/deduped); the bytes shown are
one 154-step sweep of embed_out.weight (50304 x hidden, fp16) per model, the
extracts a replica keeps in its Hub cache for `garden hist --steps all`.
"""

import argparse
import bisect
import re
import struct
import sys
import zlib

POINTS_PER_WEIGHT = 160
MAX_SKIPS = 20  # nginx: hp->tries > 20 falls back to round-robin
PYTHIA_HIDDEN = {"70m": 512, "160m": 768, "410m": 1024, "1b": 2048, "1.4b": 2048,
                 "2.8b": 2560, "6.9b": 4096, "12b": 5120}
PYTHIA_STEPS = 154
PYTHIA_VOCAB = 50304


def pythia_models():
    return [f"pythia/{size}/{variant}" for size in PYTHIA_HIDDEN
            for variant in ("standard", "deduped")]


def sweep_bytes(model):
    """Bytes of embed_out.weight over Pythia's 154 steps, or None for other models."""
    suite, size, _ = (model.split("/") + ["", "", ""])[:3]
    if suite != "pythia" or size not in PYTHIA_HIDDEN:
        return None
    return PYTHIA_STEPS * PYTHIA_VOCAB * PYTHIA_HIDDEN[size] * 2


class Ring:
    """servers: [(server string, weight)] in config order."""

    def __init__(self, servers):
        self.servers = [s for s, _ in servers]
        points = []
        for server, weight in servers:
            host, port = split_server(server)
            base = zlib.crc32(port, zlib.crc32(b"\0", zlib.crc32(host)))
            prev = 0
            for _ in range(POINTS_PER_WEIGHT * weight):
                prev = zlib.crc32(struct.pack("<I", prev), base)
                points.append((prev, server))
        # nginx's qsort is not stable: with equal hashes which server's point
        # survives is unspecified, and crc32 collisions among 160 * N points are
        # rare enough (~N^2 / 2^23) to ignore.
        points.sort(key=lambda p: p[0])
        self.points = []
        for point in points:
            if not self.points or self.points[-1][0] != point[0]:
                self.points.append(point)
        self.hashes = [h for h, _ in self.points]

    def owner(self, key, down=()):
        """The server nginx picks for this key, skipping servers in `down`."""
        if not key:
            return None  # an empty key goes round-robin
        i = bisect.bisect_left(self.hashes, zlib.crc32(key.encode()))
        for skip in range(MAX_SKIPS + 1):
            server = self.points[(i + skip) % len(self.points)][1]
            if server not in down:
                return server
        return None  # nginx would fall back to round-robin

    def shares(self):
        """{server: fraction of the 2^32 ring it owns}."""
        out = dict.fromkeys(self.servers, 0)
        for i, (h, server) in enumerate(self.points):
            start = self.points[i - 1][0] if i else self.points[-1][0] - 2**32
            out[server] += (h - start) / 2**32
        return out


def split_server(server):
    """nginx's split: the port is the digits after the last ':' (none for unix:)."""
    raw = server.encode()
    if raw[:5].lower() == b"unix:":
        return raw[5:], b""
    m = re.fullmatch(rb"(.*):([0-9]*)", raw)
    return (m.group(1), m.group(2)) if m else (raw, b"")


def servers_of_config(text, upstream="garden"):
    """[(server, weight)] of `upstream NAME { ... }` in an nginx config (or in a
    YAML file embedding one)."""
    m = re.search(r"upstream\s+" + re.escape(upstream) + r"\s*\{(.*?)\}", text, re.S)
    if not m:
        raise ValueError(f"no `upstream {upstream} {{...}}` block")
    servers = []
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0]
        s = re.match(r"\s*server\s+(\S+?)(\s[^;]*)?;", line)
        if s:
            w = re.search(r"\bweight=(\d+)", s.group(2) or "")
            servers.append((s.group(1), int(w.group(1)) if w else 1))
    if not servers:
        raise ValueError(f"`upstream {upstream}` has no server lines")
    return servers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="an nginx config (or YAML holding one) with upstream garden")
    src.add_argument("--replica", action="append", help="HOST:PORT, in config order; repeatable")
    ap.add_argument("models", nargs="*", help="suite/size/variant keys (default: Pythia's 16)")
    args = ap.parse_args(argv)
    if args.config:
        with open(args.config) as f:
            servers = servers_of_config(f.read())
    else:
        servers = [(r, 1) for r in args.replica]
    ring = Ring(servers)
    models = args.models or pythia_models()

    def gb(n):
        return f"{n / 1e9:.1f} GB" if n is not None else "?"

    shares = ring.shares()
    print("replica  ring share  models  sweep bytes")
    for server in ring.servers:
        mine = [m for m in models if ring.owner(m) == server]
        known = [sweep_bytes(m) for m in mine if sweep_bytes(m) is not None]
        total = sum(known) if known else None
        print(f"{server}  {shares[server]:.3f}  {len(mine)}  {gb(total)}")
        for m in mine:
            print(f"    {m}  {gb(sweep_bytes(m))}")
    print("\nif one replica dies, its models move to:")
    for dead in ring.servers:
        moves = {m: ring.owner(m, down={dead}) for m in models if ring.owner(m) == dead}
        moved = ", ".join(f"{m} -> {to}" for m, to in moves.items()) or "(nothing moves)"
        print(f"  {dead} down: {moved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
