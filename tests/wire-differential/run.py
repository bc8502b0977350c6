#!/usr/bin/env python3
"""Differential wire suite (issue 15, section 3).

Starts a real OpenBao dev server and a Coffer dev server (or uses running ones), sends
both the same ordered corpus of raw HTTP requests (corpus.py), and compares, request by
request, the status code and the response: JSON keys and value types recursively, and
values too except the ones that are random (ids, tokens, accessors, timestamps,
ciphertexts...). Error bodies must be {"errors":[...]} on both; their text is not compared.

    run.py --bao-bin bao --coffer-bin target/debug/coffer [--report FILE] [-v]
    run.py --bao-addr 127.0.0.1:8200 --coffer-addr 127.0.0.1:8300   (fresh dev servers,
                                                                     root token "root")
    run.py ... --only kv1.        run only the requests whose id contains a string (their
                                  preconditions may then be missing: for exploring only)

Exits 1 when a difference is not listed in known-differences.json, when Coffer answers
5xx, resets or drops a connection, takes abnormally long on any request, or when its
time on big bodies is not linear in their size (see timing checks); 0 otherwise.
Known differences that no longer occur are listed as STALE (not a failure; delete them).

Python 3 standard library only.
"""

import argparse
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402

ROOT = "root"


# ------------------------------------------------------------------------------------------
# Raw HTTP client
# ------------------------------------------------------------------------------------------


NOT_JSON = object()
TOO_DEEP = object()


def safe_json(data):
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return NOT_JSON
    except RecursionError:
        return TOO_DEEP


class Result:
    """One server's answer to one corpus request."""

    def __init__(self):
        self.transport = "ok"  # ok | closed (no answer) | reset | timeout | refused
        self.responses = []  # list of (status, headers dict (lower-case keys), body bytes)
        self.elapsed = 0.0

    @property
    def status(self):
        return self.responses[0][0] if self.responses else 0

    @property
    def body(self):
        return self.responses[0][2] if self.responses else b""

    def json(self):
        if not self.responses:
            return None
        v = safe_json(self.body)
        return None if v is NOT_JSON else v

    def summary(self):
        if self.transport != "ok" and not self.responses:
            return self.transport
        parts = []
        for st, _, body in self.responses:
            parts.append("%d %s" % (st, body[:300].decode("utf-8", "replace").strip()))
        s = " | ".join(parts)
        if self.transport != "ok":
            s += " [then %s]" % self.transport
        return s


def parse_responses(raw, head_only_first=False):
    """Splits a byte stream into HTTP responses; returns (list, leftover_ok)."""
    out = []
    rest = raw
    first = True
    while rest:
        i = rest.find(b"\r\n\r\n")
        if i < 0:
            return out, False
        head = rest[:i].decode("latin-1")
        rest = rest[i + 4 :]
        lines = head.split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            return out, False
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if status in (100, 102, 103):
            continue  # interim answer (100 Continue)
        if (head_only_first and first) or status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                j = rest.find(b"\r\n")
                if j < 0:
                    return out + [(status, headers, body)], False
                try:
                    n = int(rest[:j].split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    return out + [(status, headers, body)], False
                rest = rest[j + 2 :]
                if n == 0:
                    k = rest.find(b"\r\n")
                    rest = rest[k + 2 :] if k >= 0 else b""
                    break
                body += rest[:n]
                rest = rest[n + 2 :]
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body = rest[:n]
            rest = rest[n:]
        else:
            body = rest
            rest = b""
        out.append((status, headers, body))
        first = False
    return out, True


def send_raw(addr, data, timeout=15.0, head=False, half_close=False):
    """Writes `data` (bytes) on a fresh connection and reads until the server closes it."""
    r = Result()
    host, port = addr.rsplit(":", 1)
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError:
        r.transport = "refused"
        return r
    raw = b""
    try:
        s.settimeout(timeout)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413, 400) before reading everything
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    except socket.timeout:
        r.transport = "timeout"
    except ConnectionResetError:
        r.transport = "reset"
    except OSError:
        r.transport = "reset"
    finally:
        s.close()
    r.elapsed = time.monotonic() - t0
    r.responses, complete = parse_responses(raw, head_only_first=head)
    if not raw and r.transport == "ok":
        r.transport = "closed"
    elif not complete and r.transport == "ok" and not r.responses:
        r.transport = "garbled"
    return r


# ------------------------------------------------------------------------------------------
# Requests: templating and building
# ------------------------------------------------------------------------------------------

TEMPLATE = re.compile(r"\{\{([a-zA-Z0-9_]+)\}\}")
BTEMPLATE = re.compile(rb"\{\{([a-zA-Z0-9_]+)\}\}")


def fill(value, env):
    """Replaces {{name}} by the server's own captured value, in str or bytes."""
    if isinstance(value, bytes):
        return BTEMPLATE.sub(lambda m: env.get(m.group(1).decode(), "MISSING-" + m.group(1).decode()).encode(), value)
    if isinstance(value, str):
        return TEMPLATE.sub(lambda m: env.get(m.group(1), "MISSING-" + m.group(1)), value)
    if isinstance(value, list):
        return [fill(v, env) for v in value]
    if isinstance(value, dict):
        return {fill(k, env): fill(v, env) for k, v in value.items()}
    return value


def build(req, addr, env):
    """The bytes of one request (corpus.py describes the fields)."""
    if "raw" in req:
        return fill(req["raw"], dict(env, addr=addr))
    method = req.get("method", "GET")
    path = fill(req["path"], env)
    if isinstance(path, str):
        path = path.encode("utf-8")
    headers = []
    if req.get("host", True):
        headers.append(("Host", addr))
    token = req.get("token", ROOT)
    if token is not None:
        headers.append(("X-Vault-Token", fill(token, env)))
    body = b""
    if "json" in req:
        body = json.dumps(fill(req["json"], env)).encode()
        if method == "PATCH":
            headers.append(("Content-Type", "application/merge-patch+json"))
    elif "body" in req:
        body = fill(req["body"], env)
        if isinstance(body, str):
            body = body.encode("utf-8")
    for k, v in req.get("headers", []):
        headers.append((k, fill(v, env)))
    if body or method in ("PUT", "POST", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    out = method.encode() + b" " + path + b" HTTP/1.1\r\n"
    for k, v in headers:
        out += k.encode() + b": " + (v.encode("utf-8") if isinstance(v, str) else v) + b"\r\n"
    return out + b"\r\n" + body


def lookup(doc, dotted):
    cur = doc
    for part in dotted.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def run_one(req, addr, env):
    data = build(req, addr, env)
    head = req.get("method") == "HEAD" or data.startswith(b"HEAD ")
    r = send_raw(addr, data, timeout=req.get("timeout", 15.0), head=head, half_close=req.get("half_close", False))
    doc = r.json()
    for name, dotted in req.get("capture", {}).items():
        v = lookup(doc, dotted) if doc is not None else None
        if isinstance(v, str):
            env[name] = v
        elif v is not None:
            env[name] = json.dumps(v)
    return r


# ------------------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------------------

# Keys whose values are random or time-dependent on either server: only their types count.
VOLATILE_KEYS = {
    "request_id", "lease_id", "id", "accessor", "client_token", "token", "entity_id", "nonce",
    "ciphertext", "hmac", "signature", "creation_time", "expire_time", "issue_time",
    "last_renewal_time", "last_renewal", "created_time", "deletion_time", "updated_time",
    "secret_id", "secret_id_accessor", "role_id", "wrapped_accessor", "uuid", "backup",
    "random_bytes", "sum", "cluster_id", "cluster_name", "build_date", "server_time_utc",
    "server_time", "mount_accessor", "last_updated_time", "expiration_time", "last_vault_rotation",
    "key", "public_key", "leader_address", "cluster_address",
    "hash", "last_rotated", "install_time",
    "running_plugin_version", "running_sha256", "plugin_version", "sha256", "hmac_key", "bytes",
    "rand", "wrapping_token", "certificate", "csr",
}

RANDOM_VALUE = [
    re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    re.compile(r"^(hv[sbr]|s|b|r)\.[A-Za-z0-9_.-]{16,}$"),
    re.compile(r"^(vault|coffer):v\d+:"),
    re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"),
    re.compile(r"^[A-Za-z0-9+/=_-]{40,}$"),
    re.compile(r"^[A-Za-z0-9]{24}$"),  # accessors
    re.compile(r"^(auth|cubbyhole|identity|kv|secret|sys|transit|token|userpass|approle|ns_token)_[0-9a-f]{8}$"),
]


def is_random(value):
    return isinstance(value, str) and any(p.search(value) for p in RANDOM_VALUE)


def tname(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "number"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def short(v):
    s = json.dumps(v, ensure_ascii=True)
    return s if len(s) <= 60 else s[:57] + "..."


def compare_json(b, c, path, out, volatile=False):
    tb, tc = tname(b), tname(c)
    where = path or "(body)"
    if tb != tc:
        out.append("%s: %s %s vs %s %s" % (where, tb, short(b), tc, short(c)))
        return
    if tb == "object":
        for k in sorted(set(b) | set(c)):
            p = path + "." + k if path else k
            if k not in c:
                out.append("%s: missing in coffer (openbao has %s)" % (p, short(b[k])))
            elif k not in b:
                out.append("%s: extra in coffer (%s)" % (p, short(c[k])))
            else:
                compare_json(b[k], c[k], p, out, volatile or k in VOLATILE_KEYS)
        return
    if tb == "array":
        if len(b) != len(c):
            if all(not isinstance(x, (dict, list)) for x in b + c):
                out.append("%s: %s vs %s" % (where, short(b), short(c)))
            else:
                out.append("%s: %d items vs %d" % (where, len(b), len(c)))
            return
        if all(isinstance(x, str) for x in b + c) and not volatile:
            if b != c and sorted(b) == sorted(c):
                out.append("%s: order %s vs %s" % (where, short(b), short(c)))
                return
        for i, (x, y) in enumerate(zip(b, c)):
            compare_json(x, y, "%s[%d]" % (path, i), out, volatile)
        return
    if volatile:
        return
    if tb == "number":
        # Counting-down TTLs and epoch timestamps: a few seconds apart are equal.
        if abs(b - c) <= 3 or (b > 1_000_000_000 and c > 1_000_000_000):
            return
    elif tb == "string" and (is_random(b) or is_random(c)):
        return
    if b != c:
        out.append("%s: %s vs %s" % (where, short(b), short(c)))


def errors_shape(doc):
    """For an error answer: True when the body is exactly {"errors": [strings]}."""
    return (
        isinstance(doc, dict)
        and list(doc.keys()) == ["errors"]
        and isinstance(doc["errors"], list)
        and all(isinstance(e, str) for e in doc["errors"])
    )


def compare(req, b, c):
    """Differences between OpenBao's answer `b` and Coffer's `c`, as strings."""
    out = []
    if b.transport != c.transport:
        out.append("transport: %s vs %s" % (b.transport, c.transport))
    if len(b.responses) != len(c.responses):
        out.append("responses: %d vs %d" % (len(b.responses), len(c.responses)))
    mode = req.get("compare", "full")
    for i, (rb, rc) in enumerate(zip(b.responses, c.responses)):
        tag = "" if i == 0 else "response %d " % (i + 1)
        if rb[0] != rc[0]:
            out.append("%sstatus: %d vs %d" % (tag, rb[0], rc[0]))
            continue  # the bodies then differ as a matter of course
        if mode == "status":
            continue
        # The headers a client acts on: the body's media type and whether it may be cached.
        for h in ("content-type", "cache-control"):
            vb = rb[1].get(h, "").split(";")[0].strip().lower()
            vc = rc[1].get(h, "").split(";")[0].strip().lower()
            if vb != vc:
                out.append("%sheader %s: %s vs %s" % (tag, h, vb or "(none)", vc or "(none)"))
        jb = safe_json(rb[2]) if rb[2] else None
        jc = safe_json(rc[2]) if rc[2] else None
        if jb is TOO_DEEP or jc is TOO_DEEP:
            # Deeper than Python's parser goes (an echoed deep body): compare the bytes' length class.
            if (jb is TOO_DEEP) != (jc is TOO_DEEP):
                out.append("%sbody: nesting depth differs" % tag)
            continue
        jb = "<non-json>" if jb is NOT_JSON else jb
        jc = "<non-json>" if jc is NOT_JSON else jc
        if jb == "<non-json>" or jc == "<non-json>":
            # Plain-text answers (Go's "400 Bad Request", HTML): only JSON-ness is compared.
            if (jb == "<non-json>") != (jc == "<non-json>") and jb is not None and jc is not None:
                out.append("%sbody: %s vs %s" % (tag, "text" if jb == "<non-json>" else short(jb),
                                                  "text" if jc == "<non-json>" else short(jc)))
            continue
        if rb[0] >= 400 and errors_shape(jb):
            if not errors_shape(jc):
                out.append("%sbody: errors %s vs %s" % (tag, short(jb), short(jc)))
            elif (len(jb["errors"]) == 0) != (len(jc["errors"]) == 0):
                out.append("%serrors: %s vs %s" % (tag, short(jb["errors"]), short(jc["errors"])))
            continue
        if jb is None or jc is None:
            if jb is None and rb[0] >= 400 and errors_shape(jc):
                continue  # an error with no body on OpenBao, with {"errors":[...]} on Coffer
            if (jb is None) != (jc is None):
                out.append("%sbody: %s vs %s" % (tag, "empty" if jb is None else short(jb),
                                                  "empty" if jc is None else short(jc)))
            continue
        d = []
        try:
            compare_json(jb, jc, "", d)
        except RecursionError:
            d = [] if json.dumps(jb, sort_keys=True) == json.dumps(jc, sort_keys=True) else ["body: deep JSON differs"]
        out.extend(tag + x for x in d)
    return out


# ------------------------------------------------------------------------------------------
# Servers
# ------------------------------------------------------------------------------------------


def listening_ports(pid):
    """The TCP ports process `pid` or any of its descendants listen on (OpenBao's Python entry
    point runs the server as a child), from /proc: the processes' socket inodes matched against
    the listening sockets of /proc/PID/net/tcp."""
    parents = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
                parents.append((int(d), int(stat.rsplit(")", 1)[1].split()[1])))
            except (OSError, ValueError, IndexError):
                pass
    tree = [pid]
    for parent in tree:
        tree.extend(p for p, pp in parents if pp == parent and p not in tree)
    inodes = set()
    for p in tree:
        try:
            fds = os.listdir("/proc/%d/fd" % p)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (p, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    ports = set()
    try:
        with open("/proc/%d/net/tcp" % pid) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    except OSError:
        pass
    return sorted(ports)


def is_ready(addr):
    r = send_raw(addr, b"GET /v1/sys/mounts/secret HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n"
                       b"Connection: close\r\n\r\n", timeout=2)
    return r.status == 200


def wait_ready(addr, proc, what, deadline=30.0):
    """Waits until the server answers; with addr None (a server we started on port 0), finds
    its address among the ports its process listens on. Returns the address."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            sys.exit("run.py: %s exited early (status %s)" % (what, proc.returncode))
        candidates = [addr] if addr else ["127.0.0.1:%d" % p for p in listening_ports(proc.pid)]
        for a in candidates:
            if is_ready(a):
                return a
        time.sleep(0.05)
    sys.exit("run.py: %s did not become ready at %s" % (what, addr or "any port it listens on"))


def start(cmd, what, workdir):
    log = open(os.path.join(workdir, what + ".log"), "wb")
    env = dict(os.environ, HOME=workdir)
    for k in list(env):
        if k.startswith(("VAULT_", "BAO_")):
            del env[k]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=workdir)


# ------------------------------------------------------------------------------------------
# Known differences
# ------------------------------------------------------------------------------------------


def load_known(path):
    """known-differences.json: {"differences": [entry...]}; an entry has
    class ("bug" | "deliberate"), reason, ids (request id globs, default all), diff (a
    regular expression searched in each difference line, default any line) and intermittent
    (true: the difference does not show in every run, so the entry is never reported stale)."""
    with open(path) as f:
        doc = json.load(f)
    entries = doc["differences"]
    for e in entries:
        if e.get("class") not in ("bug", "deliberate") or not e.get("reason") or not (e.get("ids") or e.get("diff")):
            sys.exit("run.py: a known-differences entry needs class (bug|deliberate), reason, and ids or diff: %r" % e)
        e["_re"] = re.compile(e["diff"]) if e.get("diff") else None
        e["_hits"] = 0
    return entries


def known_for(entries, rid, line):
    """The entry that covers this difference line of this request, or None: the most specific
    kind first (ids and diff, then diff only, then ids only), in file order within a kind."""
    ranked = sorted(entries, key=lambda e: 0 if e.get("ids") and e.get("diff") else 1 if e.get("diff") else 2)
    for e in ranked:
        if e.get("ids") and not any(fnmatch.fnmatchcase(rid, pat) for pat in e["ids"]):
            continue
        # Coffer's own faults (5xx, dropped connection, slowness) are excused only by entries
        # that name them in their diff.
        if e["_re"] is None and line.startswith("coffer-"):
            continue
        # "response 2 status: ..." (pipelining) matches like "status: ...".
        if e["_re"] is not None and not e["_re"].search(re.sub(r"^response \d+ ", "", line)):
            continue
        return e
    return None


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bao-bin", help="start `bao server -dev` from this binary")
    ap.add_argument("--coffer-bin", help="start `coffer server -dev` from this binary")
    ap.add_argument("--bao-addr", help="a fresh OpenBao dev server (root token root)")
    ap.add_argument("--coffer-addr", help="a fresh Coffer dev server (root token root)")
    ap.add_argument("--known", default=os.path.join(HERE, "known-differences.json"))
    ap.add_argument("--report", help="write the full report (every difference) to this file")
    ap.add_argument("--json-out", help="write every difference as JSON to this file")
    ap.add_argument("--only", help="run only requests whose id contains this")
    ap.add_argument("--keep", action="store_true", help="keep the servers' logs (printed: where)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="wire-diff-")
    procs = []
    rc = 1
    crashed = False
    try:
        # Servers started here bind port 0 (no one else can take the port in between) and are
        # found among the ports their process listens on: OpenBao prints the port it was given,
        # not the one it bound.
        bao = args.bao_addr
        if not bao:
            procs.append(start([args.bao_bin or shutil.which("bao") or "bao", "server", "-dev",
                                "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0",
                                "-dev-no-store-token"], "bao", workdir))
        cof = args.coffer_addr
        if not cof:
            if not args.coffer_bin:
                sys.exit("run.py: give --coffer-bin or --coffer-addr")
            procs.append(start([args.coffer_bin, "server", "-dev", "-dev-root-token-id=root",
                                "-dev-listen-address=127.0.0.1:0", "-dev-no-store-token"], "coffer", workdir))
        bao = wait_ready(bao, procs[0] if not args.bao_addr else None, "bao")
        cof = wait_ready(cof, procs[-1] if not args.coffer_addr else None, "coffer")
        rc = run(args, bao, cof, server_versions(bao, cof))
    finally:
        coffer_proc = procs[-1] if procs and not args.coffer_addr else None
        if coffer_proc is not None and coffer_proc.poll() is not None:
            print("FAIL: the Coffer server exited during the run (status %s)" % coffer_proc.returncode)
            rc = 1
            crashed = True
        for p in procs:
            p.kill()
            p.wait()
        coffer_log = os.path.join(workdir, "coffer.log")
        if os.path.exists(coffer_log):
            with open(coffer_log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            if "panicked" in text:
                print("FAIL: the Coffer server panicked")
                rc = 1
                crashed = True
            if crashed:
                print("Coffer server log (end):\n" + text[-3000:])
                rc = 1
        if args.keep:
            print("server logs kept in " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(rc)


def server_versions(bao, cof):
    """The two servers' versions as sys/seal-status reports them (the known differences were
    recorded against OpenBao 2.7.2; another version may differ in other ways)."""
    out = []
    for addr in (bao, cof):
        r = send_raw(addr, b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=5)
        doc = r.json() or {}
        out.append(str(doc.get("version", "?")))
    return "OpenBao %s, Coffer %s" % tuple(out)


def run(args, bao, cof, versions):
    requests = corpus.build_corpus()
    ids = [r["id"] for r in requests]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        sys.exit("run.py: duplicate request ids: %s" % sorted(dup)[:10])
    known = load_known(args.known)
    env_b, env_c = {}, {}
    failures = []
    diffs = []  # (req, [(line, known entry or None)], OpenBao result, Coffer result)
    timings = {}
    per_cat = {}
    t_start = time.monotonic()
    by_id = {}
    for req in requests:
        if args.only and args.only not in req["id"]:
            continue
        rb = run_one(req, bao, env_b)
        rc = run_one(req, cof, env_c)
        d = compare(req, rb, rc)
        # Coffer's own faults count as differences too, so that the same list can excuse them.
        if rc.transport in ("reset", "closed", "garbled") and rb.transport == "ok":
            d.append("coffer-connection: Coffer %s the connection, OpenBao answered" % rc.transport)
        if any(st >= 500 for st, _, _ in rc.responses) and not req.get("asked_5xx"):
            d.append("coffer-5xx: Coffer answered %d" % max(st for st, _, _ in rc.responses))
        if rc.elapsed > max(5.0, 3 * rb.elapsed):
            d.append("coffer-slow: Coffer took %.2fs (OpenBao %.2fs)" % (rc.elapsed, rb.elapsed))
        if d:
            by_id[req["id"]] = (req, d, rb, rc)
        cat = req["id"].split(".")[0]
        per_cat.setdefault(cat, [0, 0.0, 0.0])
        per_cat[cat][0] += 1
        per_cat[cat][1] += rb.elapsed
        per_cat[cat][2] += rc.elapsed
        if "timing" in req:
            timings.setdefault(req["timing"][0], {})[req["timing"][1]] = (rb.elapsed, rc.elapsed, req)
        if args.verbose:
            print("%-60s %-4s %-4s %6.3f %6.3f %s" % (req["id"], rb.status, rc.status, rb.elapsed, rc.elapsed,
                                                     "DIFF" if d else ""))
    total = time.monotonic() - t_start

    # Time stays linear in the size of the input: the 4x body may take 8 times as long as the
    # 1x body, plus 0.5 s (linear code takes about 4 times; quadratic code 16 times).
    timing_lines = []
    for group, sizes in sorted(timings.items()):
        if not {"1x", "4x"} <= set(sizes):
            continue
        b1, c1, _ = sizes["1x"]
        b4, c4, req = sizes["4x"]
        line = "%s: Coffer %.3fs -> %.3fs (x%.1f); OpenBao %.3fs -> %.3fs" % (group, c1, c4, c4 / max(c1, 1e-4), b1, b4)
        timing_lines.append(line)
        if c4 > 8 * c1 + 0.5:
            entry = by_id.setdefault(req["id"], (req, [], Result(), Result()))
            entry[1].append("coffer-nonlinear: " + line)

    for rid, (req, d, rb, rc) in by_id.items():
        lines = []
        for line in d:
            k = known_for(known, rid, line)
            if k is not None:
                k["_hits"] += 1
            else:
                failures.append("%s: %s" % (rid, line))
            lines.append((line, k))
        diffs.append((req, lines, rb, rc))

    known_n = sum(1 for _, lines, _, _ in diffs if all(k for _, k in lines))
    bug_n = sum(1 for _, lines, _, _ in diffs if all(k for _, k in lines) and any(k["class"] == "bug" for _, k in lines))
    lines0 = ("wire-differential: %d requests, %d differ (%d fully known: %d with a bug, %d only deliberate), "
              "%d unknown difference lines, %.1fs"
              % (sum(1 for r in requests if not args.only or args.only in r["id"]), len(diffs), known_n, bug_n,
                 known_n - bug_n, len(failures), total))
    report = [lines0, versions, "", "Timing (big inputs):"] + ["  " + t for t in timing_lines]
    report += ["", "Time per group (requests, OpenBao s, Coffer s):"]
    report += ["  %-10s %5d %7.2f %7.2f" % (k, v[0], v[1], v[2]) for k, v in sorted(per_cat.items())]
    report += ["", "Differences (OpenBao's side first, then Coffer's):"]
    for req, lines, rb, rc in diffs:
        report.append("- %s" % req["id"])
        report.append("    request: %s" % describe(req))
        for line, k in lines:
            report.append("    %s %s%s" % ("[%s]" % k["class"] if k else "[NEW]", line,
                                           ("  -- " + k["reason"]) if k else ""))
        report.append("    openbao: %s" % rb.summary()[:400].replace("\n", " "))
        report.append("    coffer:  %s" % rc.summary()[:400].replace("\n", " "))
    # "intermittent" entries cover differences that do not show in every run.
    stale = [e for e in known if e["_hits"] == 0 and not e.get("intermittent")]
    if stale and not args.only:
        report.append("")
        report.append("Stale known differences (they matched nothing; delete them):")
        for e in stale:
            report.append("  STALE %s %s: %s" % (",".join(e.get("ids") or ["*"]), e.get("diff", ""), e["reason"]))
    if args.report:
        with open(args.report, "w") as f:
            f.write("\n".join(report) + "\n")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump([{"id": req["id"], "request": describe(req), "diffs": [l for l, _ in lines],
                        "unknown": [l for l, k in lines if not k], "openbao": rb.summary()[:300],
                        "coffer": rc.summary()[:300]}
                       for req, lines, rb, rc in diffs], f, indent=1)
    print(versions)
    for t in timing_lines:
        print("timing " + t)
    if stale and not args.only:
        for e in stale:
            print("STALE known difference (matched nothing): %s %s" % (",".join(e.get("ids") or ["*"]), e.get("diff", "")))
    for f in failures:
        print("FAIL " + f)
    print(lines0)
    return 1 if failures else 0


def describe(req):
    if "raw" in req:
        return "raw " + repr(req["raw"][:120])[2:-1]
    s = "%s %s" % (req.get("method", "GET"), req["path"] if isinstance(req["path"], str) else repr(req["path"])[2:-1])
    if len(s) > 160:
        s = s[:150] + "...(%d chars)" % len(s)
    if "json" in req:
        s += " " + short(req["json"])
    elif "body" in req:
        b = req["body"]
        s += " body=" + (repr(b[:60]) + ("...(%d bytes)" % len(b) if len(b) > 60 else ""))
    if req.get("headers"):
        s += " headers=" + short([list(h) if isinstance(h[1], str) else [h[0], repr(h[1])] for h in req["headers"]])
    if req.get("token", ROOT) != ROOT:
        s += " token=" + str(req.get("token"))
    return s


if __name__ == "__main__":
    main()
