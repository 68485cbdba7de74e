#!/usr/bin/python3
"""A mock of the Hugging Face Hub and its LFS CDN on loopback, for the tests of
Garden's Hub checkpoint source. Python 3 standard library only.

It mimics the real Hub wherever Garden or the official clients (huggingface_hub,
@huggingface/hub) depend on it; tests/testing/mock_hub_check.mjs checks it against
the official JS client.

Fixtures: each repo maps to a folder holding one subfolder per branch, step<N>/
(scripts/make_suite.py's plain layout). Branches are the step<N> folders; main (and
HEAD) is the highest step, with the same commit, as on Pythia's repos. A branch's
commit is sha1(repo, branch, sorted (path, git blob id)). The metadata (sizes,
git blob ids, sha256s, commits) is a snapshot taken at construction and by
rescan(), like the Hub's database; file bytes are read from disk on every request,
so a test that damages a file after the snapshot gets bytes that no longer match
the advertised ETag / sha256 / size (framing stays honest: Content-Length is what
is actually on disk).

LFS files (*.safetensors, *.bin, *.pt, or over 10 MB) resolve to a 302 onto the
CDN port, with a signed, expiring URL; other files are served by the Hub itself.

Module use:
    import mock_hub
    hub = mock_hub.MockHub(repos={"EleutherAI/pythia-70m": "/fixtures/pythia-70m"},
                           gated={"EleutherAI/pythia-70m"}, token="hf_xxx")
    hub.start(); hub.url; hub.cdn_url; ...; hub.stop()
Command line:
    /usr/bin/python3 tests/testing/mock_hub.py --repo ORG/NAME=DIR [--repo ...]
        [--gated ORG/NAME] [--token T] [--rename OLD=NEW] [--port P] [--cdn-port P]
        [--url-ttl S] [--cdn-mode s3|cloudfront] [--resolve-cache] [--port-file F]
    prints the hub URL and then the CDN URL, one per line, and serves until SIGTERM.

Binds and talks to 127.0.0.1 only. Quiet; never logs tokens.
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote

LOOPBACK = "127.0.0.1"  # the only address this mock binds or names
LFS_SUFFIXES = (".safetensors", ".bin", ".pt")
LFS_MIN_SIZE = 10 * 1024 * 1024  # larger files are LFS whatever their name
CHUNK = 256 * 1024
STATS_WAIT_S = 5.0  # stats() waits this long at most for in-flight requests
EARLY_FAULTS = ("503", "429")  # replace the answer
RANGE_FAULTS = ("ignore_range", "wrong_range")  # only for ranged answers (206)
BODY_FAULTS = ("drop", "reset", "short")  # cut the body
MISBEHAVIOURS = EARLY_FAULTS + RANGE_FAULTS + BODY_FAULTS
CDN_MODES = ("s3", "cloudfront")
S3_AUTH_CONFLICT = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                    "Signature query string parameter or the Authorization header should be specified")
_STEP_DIR = re.compile(r"step(\d+)")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
UNSATISFIABLE = "unsatisfiable"


# ---------------------------------------------------------------------------------
# Repository snapshot


def git_blob_sha1(data):
    """Git's blob id: sha1 of b"blob <len>\\0" + content (the Hub's ETag of small files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256, size):
    """The Git LFS pointer file stored in git in place of an LFS file."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
            f"size {size}\n").encode()


def _file_digests(disk):
    """(size, git blob sha1, sha256) of a file, streamed (weights can be large)."""
    size = os.path.getsize(disk)
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    sha256 = hashlib.sha256()
    with open(disk, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha1.update(block)
            sha256.update(block)
    return size, sha1.hexdigest(), sha256.hexdigest()


def is_lfs(path, size):
    return path.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE


class Entry:
    """One file of one branch, as the Hub's database knows it."""

    __slots__ = ("path", "disk", "size", "oid", "sha256", "pointer_size")

    def __init__(self, path, disk):
        self.path = path  # repo path, '/'-separated
        self.disk = disk  # read on every request
        self.size, content_oid, sha256 = _file_digests(disk)
        if is_lfs(path, self.size):
            pointer = lfs_pointer(sha256, self.size)
            self.oid = git_blob_sha1(pointer)  # git stores the pointer, not the content
            self.sha256 = sha256
            self.pointer_size = len(pointer)
        else:
            self.oid, self.sha256, self.pointer_size = content_oid, None, None

    @property
    def lfs(self):
        return self.sha256 is not None

    def describe(self):
        return {"path": self.path, "disk": self.disk, "size": self.size, "oid": self.oid,
                "sha256": self.sha256, "lfs": self.lfs, "pointer_size": self.pointer_size}


class Branch:
    __slots__ = ("name", "commit", "entries", "mtime")

    def __init__(self, repo_id, name, folder):
        self.name = name
        self.entries = {}
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for fn in sorted(files):
                disk = os.path.join(root, fn)
                path = os.path.relpath(disk, folder).replace(os.sep, "/")
                self.entries[path] = Entry(path, disk)
        listing = "".join(f"{p}\0{e.oid}\n" for p, e in sorted(self.entries.items()))
        self.commit = hashlib.sha1(f"{repo_id}\n{name}\n{listing}".encode()).hexdigest()
        self.mtime = max([os.path.getmtime(e.disk) for e in self.entries.values()] or [0])


class Repo:
    """Branches of one repo; main and HEAD alias the highest step."""

    def __init__(self, repo_id, folder):
        self.folder = folder
        steps = sorted((int(m.group(1)), d) for d in os.listdir(folder)
                       if (m := _STEP_DIR.fullmatch(d)) and os.path.isdir(os.path.join(folder, d)))
        if not steps:
            raise ValueError(f"{folder}: no step<N> folders for {repo_id}")
        self.branches = {d: Branch(repo_id, d, os.path.join(folder, d)) for _, d in steps}
        self.main = self.branches[steps[-1][1]]
        self.by_commit = {b.commit: b for b in self.branches.values()}

    def revision(self, rev):
        """Branch for a branch name, main/HEAD, refs/heads/<name> or a full commit sha."""
        if rev.startswith("refs/heads/"):
            rev = rev[len("refs/heads/"):]
        if rev in ("main", "HEAD"):
            return self.main
        return self.branches.get(rev) or self.by_commit.get(rev)

    def refs(self):
        return [("main", self.main)] + sorted(self.branches.items(), key=lambda kv: _step(kv[0]))


def _step(name):
    return int(_STEP_DIR.fullmatch(name).group(1))


# ---------------------------------------------------------------------------------
# Replies


class FileSlice:
    """A byte range of a file on disk, streamed when sent."""

    def __init__(self, disk, start, length):
        self.disk, self.start, self.length = disk, start, length

    def __len__(self):
        return self.length

    def send(self, sock, limit, sent):
        """Sends the first `limit` bytes with sendfile(2), as a CDN's server does: the
        kernel copies, so the mock takes little of the CPU its client measures with.
        Calls sent(n) for each piece the kernel took (so a client that hangs up early
        is charged only what went)."""
        with open(self.disk, "rb") as f:
            offset, left = self.start, limit
            while left > 0:
                n = os.sendfile(sock.fileno(), f.fileno(), offset, min(CHUNK * 16, left))
                if n == 0:
                    return  # the file is shorter than announced
                sent(n)
                offset, left = offset + n, left - n


class Reply:
    """Status, headers and body (bytes or FileSlice); Content-Length is added when sent."""

    def __init__(self, status, headers=(), body=b""):
        self.status, self.headers, self.body = status, list(headers), body


def parse_range(header, total):
    """None (no usable Range: serve it all), (first, last) inclusive, or UNSATISFIABLE.

    Malformed, inverted and multi-range headers are ignored, as RFC 9110 allows."""
    m = _RANGE.fullmatch(header or "")
    if not m or m.groups() == ("", ""):
        return None
    a, b = m.groups()
    if a == "":  # suffix: the last b bytes
        n = int(b)
        return (max(0, total - n), total - 1) if n > 0 and total > 0 else UNSATISFIABLE
    first = int(a)
    last = int(b) if b else total - 1
    if b and last < first:
        return None
    if first >= total:
        return UNSATISFIABLE
    return first, min(last, total - 1)


def _shifted_range(first, last, total):
    """A different range of the same length, for "wrong_range" (None if none exists)."""
    n = last - first + 1
    start = first - 1 if first > 0 else first + 1
    if start + n > total:
        return None
    return start, start + n - 1


def json_reply(status, obj, headers=()):
    return Reply(status, [("Content-Type", "application/json; charset=utf-8")] + list(headers),
                 json.dumps(obj).encode())


def hub_error(status, code, message, headers=()):
    """The Hub's error shape: X-Error-Code (when it has one), X-Error-Message (HEAD has no
    body, so huggingface_hub reads the header) and a JSON body {"error": ...}."""
    extra = [("X-Error-Message", message)] + ([("X-Error-Code", code)] if code else [])
    return json_reply(status, {"error": message}, extra + list(headers))


def s3_error(status, code, message):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()
    return Reply(status, [("Content-Type", "application/xml")], body)


def _http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def _iso_date(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def _content_type(path):
    if path.endswith((".json", ".txt", ".md")):
        return "text/plain; charset=utf-8"  # what the Hub answers for config.json
    return "application/octet-stream"


# ---------------------------------------------------------------------------------
# Request handlers: one base (sending, faults, stats), one per port


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients (libcurl) reuse connections
    kind = None  # "hub" or "cdn"

    def version_string(self):
        return "mock-hub/1"

    def log_message(self, fmt, *args):  # quiet (and never echo an Authorization header)
        pass

    @property
    def hub(self):
        return self.server.hub

    def setup(self):
        super().setup()
        # http.server writes headers and body separately: without this, Nagle
        # and delayed ACKs add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hub._track(self.server, self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.hub._track(self.server, self.connection, False)

    def do_GET(self):
        self._dispatch(head=False)

    def do_HEAD(self):
        self._dispatch(head=True)

    def _not_allowed(self):
        self.close_connection = True  # its body (if any) is left unread
        self._dispatch(head=False, reply=Reply(405, [("Allow", "GET, HEAD")], b"Method Not Allowed"))

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _dispatch(self, head, reply=None):
        hub = self.hub
        hub._begin()
        raw_path, _, query = self.path.partition("?")
        self._status, self._sent = None, 0
        try:
            if reply is None:
                fault = hub._take_fault(EARLY_FAULTS, self.kind, raw_path)
                reply = self._early(fault) if fault else self._route_safely(raw_path, query)
            self._send(reply, head, raw_path)
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True  # the client went away, or stop() closed us
        finally:
            hub._record(self.command, self.kind, raw_path, self.headers.get("Range"),
                        self._status, self._sent)
            hub._end()

    def _route_safely(self, raw_path, query):
        try:
            return self.route(raw_path, query)
        except Exception as e:  # a bug in the mock: say so rather than hang up
            return Reply(500, [("Content-Type", "text/plain; charset=utf-8")],
                         f"mock_hub internal error: {e!r}".encode())

    def _early(self, fault):
        status = int(fault)
        message = "Service Unavailable" if status == 503 else "Too Many Requests"
        reply = (hub_error(status, None, message) if self.kind == "hub"
                 else s3_error(status, "SlowDown", "Please reduce your request rate."))
        reply.headers.append(("Retry-After", "1"))
        return reply

    def _send(self, reply, head, raw_path):
        size = len(reply.body)
        has_body = size > 0 and not head
        fault = self.hub._take_fault(BODY_FAULTS, self.kind, raw_path,
                                     lambda k: k != "short" or has_body)
        if fault in ("drop", "reset") and not has_body:
            self._status = "dropped"  # nothing to cut: hang up before answering
            return self._abort(fault == "reset")
        self._status = reply.status
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(size))
        if self.close_connection or fault:
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        limit = {"drop": size // 2, "reset": size // 2,
                 "short": size - max(1, size // 4)}.get(fault, size)
        body = reply.body
        if isinstance(body, FileSlice):
            self.wfile.flush()
            body.send(self.connection, limit, self._count)
        else:
            for i in range(0, limit, CHUNK):
                self.wfile.write(body[i:min(i + CHUNK, limit)])
                self._sent += min(CHUNK, limit - i)  # counted once the kernel took it
        if fault:
            self._abort(fault == "reset")

    def _count(self, n):
        self._sent += n

    def _abort(self, reset):
        """Closes mid-message: FIN after the bytes sent (they all arrive), or, for
        "reset", RST (the peer may lose bytes still in flight)."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_RDWR)

    def ranged(self, headers, total, body_at):
        """200 or 206 (or 416) for a resource of total bytes; body_at(start, length)."""
        headers = headers + [("Accept-Ranges", "bytes")]
        r = parse_range(self.headers.get("Range"), total)
        if r is UNSATISFIABLE:
            return self.range_unsatisfiable(headers, total)
        if r is None:
            return Reply(200, headers, body_at(0, total))
        first, last = r
        path = self.path.partition("?")[0]
        fault = self.hub._take_fault(RANGE_FAULTS, self.kind, path)
        if fault == "ignore_range":
            return Reply(200, headers, body_at(0, total))
        content_range = f"bytes {first}-{last}/{total}"
        if fault == "wrong_range":
            other = _shifted_range(first, last, total)
            if other:  # honest header for the other bytes sent
                first, last = other
                content_range = f"bytes {first}-{last}/{total}"
            else:  # nothing else to send: the header alone lies
                content_range = f"bytes {first + 1}-{last + 1}/{total}"
        return Reply(206, headers + [("Content-Range", content_range)],
                     body_at(first, last - first + 1))

    def range_unsatisfiable(self, headers, total):
        raise NotImplementedError

    def route(self, raw_path, query):
        raise NotImplementedError


class HubHandler(_Handler):
    """The Hub: /api/models/... JSON, /{repo}/resolve/{rev}/{path}, errors, tokens."""

    kind = "hub"

    def route(self, raw_path, query):
        parts = raw_path.split("/")[1:]
        seg = [unquote(p) for p in parts]  # split first: revisions may hold %2F
        if len(seg) >= 4 and seg[:2] == ["api", "models"]:
            return self.api(seg[2] + "/" + seg[3], seg[4:], parts, query)
        if len(seg) >= 7 and seg[:3] == ["api", "resolve-cache", "models"]:
            return self.resolve(seg[3] + "/" + seg[4], seg[5], "/".join(seg[6:]), parts, query,
                                cached=True)
        if len(seg) >= 5 and seg[2] == "resolve" and seg[4:] != [""]:
            return self.resolve(seg[0] + "/" + seg[1], seg[3], "/".join(seg[4:]), parts, query)
        return hub_error(404, None, "Sorry, we can't find the page you are looking for.")

    # -- access

    def auth(self):
        """None (anonymous), "valid" (the hub's token) or "invalid"."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        ok = (scheme.lower() == "bearer" and self.hub.token is not None
              and hmac.compare_digest(token.strip().encode(), self.hub.token.encode()))
        return "valid" if ok else "invalid"

    def find_repo(self, repo_id, parts, query, repo_at):
        """(Repo, None) or (None, reply): a 307 for a renamed repo (relative Location, as
        the Hub sends; clients must follow it), or RepoNotFound."""
        repo, new_id = self.hub._lookup(repo_id)
        if new_id:
            new_parts = parts[:repo_at] + [quote(p) for p in new_id.split("/")] + parts[repo_at + 2:]
            location = "/" + "/".join(new_parts) + ("?" + query if query else "")
            return None, Reply(307, [("Location", location), ("Content-Type", "text/plain; charset=utf-8")],
                               f"Temporary Redirect. Redirecting to {location}".encode())
        if repo is None:
            # The Hub hides whether a repo exists: 401 unless authenticated.
            status = 404 if self.auth() == "valid" else 401
            return None, hub_error(status, "RepoNotFound", "Repository not found")
        return repo, None

    def check_gate(self, repo_id):
        if repo_id not in self.hub.gated:
            return None
        state = self.auth()
        if state == "valid":
            return None
        message = (f"Access to model {repo_id} is restricted. You must have access to it "
                   "and be authenticated to access it. Please log in.")
        return hub_error(401 if state is None else 403, "GatedRepo", message)

    # -- /api/models/{org}/{name}[/...]

    def api(self, repo_id, rest, parts, query):
        repo, error = self.find_repo(repo_id, parts, query, 2)
        if error:
            return error
        q = parse_qs(query, keep_blank_values=True)
        if not rest or rest == [""]:
            return self.info(repo_id, repo, "main", q)
        if rest[0] == "revision" and len(rest) >= 2:
            return self.info(repo_id, repo, "/".join(rest[1:]), q)
        if rest == ["refs"]:
            return self.refs(repo, q)
        if rest[0] == "tree" and len(rest) >= 2:
            return self.tree(repo, rest[1], "/".join(rest[2:]).strip("/"), q)
        return hub_error(404, None, "Sorry, we can't find the page you are looking for.")

    def branch_or_error(self, repo, rev):
        branch = repo.revision(rev)
        if branch is None:
            return None, hub_error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return branch, None

    def info(self, repo_id, repo, rev, q):
        branch, error = self.branch_or_error(repo, rev)
        if error:
            return error
        with_blobs = q.get("blobs", [""])[0].lower() in ("1", "true")
        siblings = []
        for e in branch.entries.values():
            s = {"rfilename": e.path}
            if with_blobs:
                s.update(blobId=e.oid, size=e.size)
                if e.lfs:
                    s["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": e.pointer_size}
            siblings.append(s)
        gated = "manual" if repo_id in self.hub.gated else False
        return json_reply(200, {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id,
            "modelId": repo_id, "author": repo_id.split("/")[0], "sha": branch.commit,
            "lastModified": _iso_date(branch.mtime), "createdAt": _iso_date(branch.mtime),
            "private": False, "gated": gated, "disabled": False, "downloads": 0, "likes": 0,
            "library_name": "transformers", "pipeline_tag": "text-generation", "tags": [],
            "siblings": siblings, "spaces": []})

    def refs(self, repo, q):
        out = {"branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": b.commit}
                            for n, b in repo.refs()],
               "converts": [], "tags": []}
        if "include_prs" in q:
            out["pullRequests"] = []
        return json_reply(200, out)

    def tree(self, repo, rev, prefix, q):
        branch, error = self.branch_or_error(repo, rev)
        if error:
            return error
        recursive = q.get("recursive", [""])[0].lower() in ("1", "true")
        under = {p: e for p, e in branch.entries.items()
                 if not prefix or p.startswith(prefix + "/")}
        if prefix and not under:
            return hub_error(404, "EntryNotFound", f"{prefix} does not exist on \"{rev}\"")
        files, dirs = [], {}
        for path, e in under.items():
            rel = path[len(prefix) + 1:] if prefix else path
            names = rel.split("/")
            depth = len(names) if recursive else 1
            for i in range(1, min(depth, len(names) - 1) + 1):  # directories on the way
                d = "/".join(([prefix] if prefix else []) + names[:i])
                dirs.setdefault(d, []).append(e.oid)
            if recursive or len(names) == 1:
                files.append(e)
        out = [{"type": "directory", "size": 0, "path": d,
                "oid": hashlib.sha1("".join(oids).encode()).hexdigest()} for d, oids in dirs.items()]
        for e in files:
            item = {"type": "file", "oid": e.oid, "size": e.size, "path": e.path}
            if e.lfs:
                item["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": e.pointer_size}
            out.append(item)
        out.sort(key=lambda item: item["path"])
        return json_reply(200, out)

    # -- /{org}/{name}/resolve/{rev}/{path}

    def resolve(self, repo_id, rev, path, parts, query, cached=False):
        repo, error = self.find_repo(repo_id, parts, query, 3 if cached else 0)
        if error:
            return error
        error = self.check_gate(repo_id)
        if error:
            return error
        branch, error = self.branch_or_error(repo, rev)
        if error:
            return error
        commit = [("X-Repo-Commit", branch.commit)]
        entry = branch.entries.get(path)
        if entry is None:  # the commit comes along: huggingface_hub caches the absence
            return hub_error(404, "EntryNotFound", "Entry not found", commit)
        if entry.lfs:
            return self.lfs_redirect(entry, commit)
        if self.hub.resolve_cache and not cached and repo_id not in self.hub.gated:
            # Today's Hub sends public small files through a commit-pinned, cacheable URL.
            location = (f"/api/resolve-cache/models/{quote(repo_id)}/{branch.commit}/{quote(path)}"
                        f"?etag=%22{entry.oid}%22")
            return Reply(307, [("Location", location), ("Content-Type", "text/plain; charset=utf-8")],
                         f"Temporary Redirect. Redirecting to {location}".encode())
        return self.small_file(entry, commit)

    def small_file(self, entry, commit):
        try:
            with open(entry.disk, "rb") as f:
                data = f.read()
        except OSError:
            return hub_error(404, "EntryNotFound", "Entry not found", commit)
        name = entry.path.rsplit("/", 1)[-1]
        headers = commit + [
            ("ETag", f'"{entry.oid}"'), ("Content-Type", _content_type(entry.path)),
            ("Content-Disposition", f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"),
            ("Last-Modified", _http_date(os.path.getmtime(entry.disk)))]
        return self.ranged(headers, len(data), lambda start, n: data[start:start + n])

    def lfs_redirect(self, entry, commit):
        location = self.hub._signed_url(entry)
        headers = commit + [
            ("Location", location), ("X-Linked-Etag", f'"{entry.sha256}"'),
            ("X-Linked-Size", str(entry.size)), ("ETag", f'"{entry.sha256}"'),
            ("Content-Type", "text/plain; charset=utf-8"), ("Vary", "Origin, Accept")]
        return Reply(302, headers, f"Found. Redirecting to {location}".encode())

    def range_unsatisfiable(self, headers, total):
        return Reply(416, headers + [("Content-Range", f"bytes */{total}")],
                     b"Requested Range Not Satisfiable")


class CdnHandler(_Handler):
    """The LFS CDN: GET/HEAD /<sha256>?<signed query>, S3-style checks and errors."""

    kind = "cdn"

    def route(self, raw_path, query):
        hub = self.hub
        if "Authorization" in self.headers and hub.cdn_mode == "s3":
            return s3_error(400, "InvalidArgument", S3_AUTH_CONFLICT)  # S3 refuses a 2nd auth
        sha256 = raw_path[1:]
        q = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        expires = q.get("Expires", "")
        disposition = q.get("response-content-disposition", "")
        expected = hub._signature(sha256, expires, disposition)
        if not hmac.compare_digest(q.get("X-Amz-Signature", "").encode(), expected.encode()):
            return s3_error(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the signature you provided.")
        if not expires.isdigit() or int(expires) < hub._now():
            return s3_error(403, "AccessDenied", "Request has expired")
        disk = hub._cdn_file(sha256)
        try:
            total = os.path.getsize(disk) if disk else None
        except OSError:
            total = None
        if total is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        headers = [("Content-Type", "application/octet-stream"), ("ETag", f'"{sha256}"'),
                   ("Last-Modified", _http_date(os.path.getmtime(disk)))]
        if disposition:
            headers.append(("Content-Disposition", disposition))
        if hub.cdn_mode == "cloudfront":
            headers.append(("X-Cache", "Miss from cloudfront"))
        return self.ranged(headers, total, lambda start, n: FileSlice(disk, start, n))

    def range_unsatisfiable(self, headers, total):
        reply = s3_error(416, "InvalidRange", "The requested range is not satisfiable")
        reply.headers += headers + [("Content-Range", f"bytes */{total}")]
        return reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart on the same port right after stop()

    def __init__(self, hub, port, handler):
        self.hub = hub
        self.connections = set()
        super().__init__((LOOPBACK, port), handler)

    def handle_error(self, request, client_address):  # quiet: clients hang up, stop() cuts
        pass


# ---------------------------------------------------------------------------------
# The mock


class MockHub:
    """The Hub on one loopback port and its CDN on another. Thread-safe."""

    def __init__(self, repos, gated=(), token=None, port=0, cdn_port=0, url_ttl=3600,
                 cdn_mode="s3", resolve_cache=False):
        """repos: {"org/name": folder of step<N>/ subfolders}; gated: repo ids needing
        `Authorization: Bearer <token>` to resolve files; port / cdn_port: 0 picks free
        ones (kept across stop()/start()); url_ttl: lifetime of signed CDN URLs (s);
        cdn_mode: "s3" (rejects requests carrying Authorization, no X-Cache) or
        "cloudfront" (ignores Authorization, answers X-Cache: Miss from cloudfront);
        resolve_cache: send public small files through a 307 to /api/resolve-cache/."""
        if cdn_mode not in CDN_MODES:
            raise ValueError(f"cdn_mode must be one of {CDN_MODES}")
        self.token = token
        self.url_ttl = url_ttl
        self.cdn_mode = cdn_mode
        self.resolve_cache = resolve_cache
        self._lock = threading.RLock()
        self._folders = {r: os.path.abspath(f) for r, f in repos.items()}
        self.gated = set(gated)
        unknown = self.gated - set(self._folders)
        if unknown:
            raise ValueError(f"gated repos not served: {sorted(unknown)}")
        self._renamed = {}  # old id -> current id
        self._hash_ids = {}  # current id -> id its commits hash (git keeps them on rename)
        self._secret = secrets.token_bytes(32)  # signs CDN URLs
        self._clock_offset = 0.0
        self._ports = {"hub": port, "cdn": cdn_port}
        self._servers = {}
        self._faults = []  # [kind, left, match, port kind]
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self.reset_stats()
        self.rescan()

    # -- lifecycle

    def start(self):
        """Serves on both ports (the same ports again after a stop())."""
        with self._lock:
            if self._servers:
                return self
            try:
                for kind, handler in (("hub", HubHandler), ("cdn", CdnHandler)):
                    server = _Server(self, self._ports[kind], handler)
                    self._ports[kind] = server.server_address[1]
                    self._servers[kind] = server
                    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                     name=f"mock-hub-{kind}", daemon=True).start()
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self):
        """Stops listening (connections are then refused) and cuts open connections."""
        with self._lock:
            servers, self._servers = self._servers, {}
        for server in servers.values():
            server.shutdown()
            server.server_close()
            for conn in list(server.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def set_offline(self, offline):
        """True: the Hub and its CDN go away (stop()); False: they come back (start())."""
        self.stop() if offline else self.start()

    @property
    def running(self):
        return bool(self._servers)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._ports["hub"]

    @property
    def cdn_port(self):
        return self._ports["cdn"]

    @property
    def url(self):
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def cdn_url(self):
        return f"http://{LOOPBACK}:{self.cdn_port}"

    def __repr__(self):  # no token
        return f"MockHub({self.url}, cdn={self.cdn_url}, repos={sorted(self._folders)})"

    # -- repos

    def rescan(self):
        """Re-reads every repo folder: new steps, new contents (so new commits)."""
        repos = {r: Repo(self._hash_ids.get(r, r), f) for r, f in self._folders.items()}
        cdn = {e.sha256: e.disk for repo in repos.values() for b in repo.branches.values()
               for e in b.entries.values() if e.lfs}
        with self._lock:
            self._repos, self._cdn = repos, cdn

    def rename(self, old, new):
        """Serves repo old as new; requests naming old get a 307 to new (relative)."""
        with self._lock:
            if old not in self._repos or new in self._repos:
                raise ValueError(f"cannot rename {old} to {new}")
            self._repos[new] = self._repos.pop(old)
            self._folders[new] = self._folders.pop(old)
            self._hash_ids[new] = self._hash_ids.pop(old, old)
            if old in self.gated:
                self.gated.discard(old)
                self.gated.add(new)
            self._renamed = {k: (new if v == old else v) for k, v in self._renamed.items()}
            self._renamed[old] = new

    def commit(self, repo_id, revision="main"):
        """The commit sha a revision (branch, main, or commit) resolves to."""
        return self._branch(repo_id, revision).commit

    def branches(self, repo_id):
        """{branch name (main included): commit sha}."""
        with self._lock:
            return {n: b.commit for n, b in self._repos[repo_id].refs()}

    def entry(self, repo_id, revision, path):
        """What the Hub advertises for a file: {path, disk, size, oid, sha256, lfs, pointer_size}."""
        return self._branch(repo_id, revision).entries[path].describe()

    def signed_url(self, repo_id, revision, path):
        """A fresh signed CDN URL for an LFS file (what its resolve 302 points to)."""
        return self._signed_url(self._branch(repo_id, revision).entries[path])

    def advance_clock(self, seconds):
        """Moves the clock the CDN checks expiry against (to expire issued URLs)."""
        with self._lock:
            self._clock_offset += seconds

    def _branch(self, repo_id, revision):
        with self._lock:
            branch = self._repos[repo_id].revision(revision)
        if branch is None:
            raise KeyError(f"{repo_id}: no revision {revision}")
        return branch

    def _lookup(self, repo_id):
        """(Repo or None, new id if repo_id was renamed)."""
        with self._lock:
            if repo_id in self._renamed:
                return None, self._renamed[repo_id]
            return self._repos.get(repo_id), None

    def _cdn_file(self, sha256):
        with self._lock:
            return self._cdn.get(sha256)

    # -- signed CDN URLs

    def _now(self):
        return time.time() + self._clock_offset

    def _signature(self, sha256, expires, disposition):
        message = f"{sha256}\n{expires}\n{disposition}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _signed_url(self, entry):
        name = entry.path.rsplit("/", 1)[-1]
        disposition = f"attachment; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"
        expires = str(int(self._now()) + int(self.url_ttl))
        signature = self._signature(entry.sha256, expires, disposition)
        return (f"{self.cdn_url}/{entry.sha256}?response-content-disposition="
                f"{quote(disposition, safe='')}&Expires={expires}&X-Amz-Signature={signature}")

    # -- misbehaviour

    def misbehave(self, kind, count=1, match=None, port=None):
        """The next `count` requests whose path (raw or decoded, no query) contains
        `match` (None: any), on port kind `port` ("hub", "cdn" or None: either), get:
          "503" / "429": that status with Retry-After: 1 instead of the answer;
          "drop": headers and half the body, then the connection closes (FIN);
                  with no body to cut (HEAD), it closes without answering;
          "reset": as drop, but with a TCP RST (bytes in flight may be lost);
          "short": a body a quarter shorter than its Content-Length, then FIN
                   (only answers with a body);
          "ignore_range": 200 with the whole body although Range was asked;
          "wrong_range": 206 with other bytes than asked, Content-Range telling them
                   (only ranged answers count for these two).
        Rules apply in the order given."""
        if kind not in MISBEHAVIOURS:
            raise ValueError(f"kind must be one of {MISBEHAVIOURS}")
        if port not in (None, "hub", "cdn"):
            raise ValueError('port must be None, "hub" or "cdn"')
        if count > 0:
            with self._lock:
                self._faults.append([kind, int(count), match, port])

    def clear_misbehaviour(self):
        with self._lock:
            self._faults.clear()

    def _take_fault(self, kinds, port, raw_path, applies=lambda kind: True):
        decoded = unquote(raw_path)
        with self._lock:
            for rule in self._faults:
                kind, _, match, rule_port = rule
                if (kind in kinds and rule_port in (None, port) and applies(kind)
                        and (match is None or match in raw_path or match in decoded)):
                    rule[1] -= 1
                    if rule[1] <= 0:
                        self._faults.remove(rule)
                    return kind
        return None

    # -- statistics

    def stats(self, wait=True):
        """{"requests": [(method, "hub"|"cdn", path without query, Range header or None,
        status ("dropped" when hung up unanswered), body bytes written)],
        "bytes_sent": {"hub": n, "cdn": n}}. Waits (a few seconds at most) for
        requests being answered, so a test reads them once its client is done."""
        with self._idle:
            if wait:
                self._idle.wait_for(lambda: self._inflight == 0, timeout=STATS_WAIT_S)
            return {"requests": list(self._requests), "bytes_sent": dict(self._bytes)}

    def reset_stats(self):
        with self._lock:
            self._requests = []
            self._bytes = {"hub": 0, "cdn": 0}

    def _begin(self):
        with self._lock:
            self._inflight += 1

    def _end(self):
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    def _record(self, method, kind, path, range_header, status, sent):
        with self._lock:
            self._requests.append((method, kind, path, range_header, status, sent))
            self._bytes[kind] += sent

    def _track(self, server, conn, opened):
        with self._lock:
            (server.connections.add if opened else server.connections.discard)(conn)


# ---------------------------------------------------------------------------------
# Command line


def _pair(text):
    key, sep, value = text.partition("=")
    if not sep or key.count("/") != 1 or not value:
        raise argparse.ArgumentTypeError(f"expected ORG/NAME=VALUE, got {text!r}")
    return key, value


def main(argv=None):
    ap = argparse.ArgumentParser(description="Mock Hugging Face Hub on 127.0.0.1.")
    ap.add_argument("--repo", action="append", type=_pair, required=True, metavar="ORG/NAME=DIR")
    ap.add_argument("--gated", action="append", default=[], metavar="ORG/NAME")
    ap.add_argument("--token", default=None)
    ap.add_argument("--rename", action="append", type=_pair, default=[], metavar="OLD=NEW")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cdn-port", type=int, default=0)
    ap.add_argument("--url-ttl", type=int, default=3600)
    ap.add_argument("--cdn-mode", choices=CDN_MODES, default="s3")
    ap.add_argument("--resolve-cache", action="store_true")
    ap.add_argument("--port-file", help='written once serving: {"url", "cdn_url", "pid"}')
    args = ap.parse_args(argv)

    hub = MockHub(dict(args.repo), gated=args.gated, token=args.token, port=args.port,
                  cdn_port=args.cdn_port, url_ttl=args.url_ttl, cdn_mode=args.cdn_mode,
                  resolve_cache=args.resolve_cache)
    for old, new in args.rename:
        hub.rename(old, new)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    hub.start()
    print(hub.url, hub.cdn_url, sep="\n", flush=True)
    if args.port_file:  # atomically, so a poller never reads half of it
        tmp = f"{args.port_file}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"url": hub.url, "cdn_url": hub.cdn_url, "pid": os.getpid()}, f)
        os.replace(tmp, args.port_file)
    try:
        while not done.wait(0.5):
            pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
