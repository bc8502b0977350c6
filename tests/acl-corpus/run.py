#!/usr/bin/env python3
"""Differential ACL test runner (issue #3).

Runs the ACL corpus (corpus.json) against a Vault-compatible server
(real OpenBao or Coffer) and compares every HTTP status with the one recorded
from real OpenBao.

    run.py --addr http://127.0.0.1:8200 --token ROOT [--corpus FILE]
           [--sets cases,cases_wrapping,cases_later] [--record] [-v]

Without --record: prints `MISMATCH id: expected X got Y: body` for every
difference, then exactly one line `N passed, M failed`; exits 1 if any failed.
With --record: runs every set and writes the observed statuses back into the
corpus as expect_status (only ever do this against real OpenBao).

Case fields: id, policies, no_default_policy (default false), method
(GET/PUT/POST/DELETE/LIST/PATCH; LIST is sent as the HTTP method LIST, PATCH
as application/merge-patch+json), path (/v1/...), body (JSON or null),
expect_status, note; optional: headers (extra request headers), setup (list of
{method, path, body} sent with the root token before the case; 200/204/404
accepted), token ("none": send no token, "bogus": send an invalid one),
login (the name of an identity: the case's token comes from a userpass login
of that identity, so templated policies render for its entity).

Identities (for templated policies): the corpus key "identities" maps a name to
{metadata, alias_custom_metadata}; "groups" maps a group name to {metadata,
members (identity names), member_groups (group names)}. Each identity becomes an
entity with that name and an alias on the userpass mount "userpass-acl" (same
name, password "pw"). In policies and case paths, @ACCESSOR@ is that mount's
accessor, @ENTITY_ID:name@ and @GROUP_ID:name@ the ids on the server under test.

Python 3 standard library only.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

ALL_SETS = ("cases", "cases_wrapping", "cases_later")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # report 3xx statuses as they are


class Client:
    def __init__(self, addr, timeout=30):
        self.addr = addr.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirect)

    def request(self, method, path, token=None, body=None, headers=None):
        """Send one request; return (status, body_text). Never raises on HTTP errors."""
        if not path.startswith("/"):
            path = "/" + path
        data = None
        hdrs = {}
        if token is not None:
            hdrs["X-Vault-Token"] = token
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json"
            )
        for k, v in (headers or {}).items():
            hdrs[k] = v
        req = urllib.request.Request(self.addr + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")


def die(msg):
    print("run.py: " + msg, file=sys.stderr)
    sys.exit(2)


def check(status, text, what, ok=(200, 204)):
    if status not in ok:
        die("%s failed: HTTP %s: %s" % (what, status, text.strip()[:300]))


IDS = {}


def substitute(text):
    for k, v in IDS.items():
        text = text.replace("@%s@" % k, v)
    return text


def prepare_identities(client, root, corpus):
    """The userpass mount, entities, aliases and groups of templated cases. Idempotent."""
    if not corpus.get("identities"):
        return
    st, text = client.request("POST", "/v1/sys/auth/userpass-acl", root, {"type": "userpass"})
    if not (st == 400 and "already in use" in text):
        check(st, text, "enable userpass-acl")
    st, text = client.request("GET", "/v1/sys/auth", root)
    check(st, text, "list auth")
    IDS["ACCESSOR"] = json.loads(text)["data"]["userpass-acl/"]["accessor"]
    for name, ident in corpus["identities"].items():
        st, text = client.request("POST", "/v1/identity/entity/name/" + name, root,
                                  {"metadata": ident.get("metadata", {})})
        check(st, text, "entity " + name)
        st, text = client.request("GET", "/v1/identity/entity/name/" + name, root)
        check(st, text, "read entity " + name)
        eid = json.loads(text)["data"]["id"]
        IDS["ENTITY_ID:" + name] = eid
        st, text = client.request("POST", "/v1/identity/entity-alias", root, {
            "name": name, "mount_accessor": IDS["ACCESSOR"], "canonical_id": eid,
            "custom_metadata": ident.get("alias_custom_metadata", {})})
        check(st, text, "alias " + name)
    for name, g in corpus.get("groups", {}).items():
        members = [IDS["ENTITY_ID:" + m] for m in g.get("members", [])]
        subgroups = [IDS["GROUP_ID:" + m] for m in g.get("member_groups", [])]
        st, text = client.request("POST", "/v1/identity/group/name/" + name, root, {
            "metadata": g.get("metadata", {}), "member_entity_ids": members,
            "member_group_ids": subgroups})
        check(st, text, "group " + name)
        st, text = client.request("GET", "/v1/identity/group/name/" + name, root)
        check(st, text, "read group " + name)
        IDS["GROUP_ID:" + name] = json.loads(text)["data"]["id"]


def prepare(client, root, corpus):
    """Mounts, seed data, identities and policies, all with the root token. Idempotent."""
    for m in corpus.get("mounts", []):
        body = {"type": m["type"]}
        if "options" in m:
            body["options"] = m["options"]
        st, text = client.request("POST", "/v1/sys/mounts/" + m["path"], root, body)
        if st == 400 and "already in use" in text:
            continue
        check(st, text, "mount " + m["path"])
    for s in corpus.get("seed", []):
        st, text = client.request("PUT", "/v1/" + s["path"].lstrip("/"), root, s["data"])
        check(st, text, "seed " + s["path"])
    prepare_identities(client, root, corpus)
    for name, hcl in corpus.get("policies", {}).items():
        st, text = client.request("PUT", "/v1/sys/policies/acl/" + name, root, {"policy": substitute(hcl)})
        check(st, text, "policy " + name)


class CaseError(Exception):
    """Setup or token creation failed: the case fails, the run goes on."""


def login_token(client, root, case):
    user = case["login"]
    st, text = client.request("POST", "/v1/auth/userpass-acl/users/" + user, root, {
        "password": "pw", "token_policies": case["policies"],
        "token_no_default_policy": bool(case.get("no_default_policy", False))})
    if st not in (200, 204):
        raise CaseError("user %s: HTTP %s: %s" % (user, st, text.strip()[:200]))
    st, text = client.request("POST", "/v1/auth/userpass-acl/login/" + user, None, {"password": "pw"})
    try:
        if st != 200:
            raise ValueError
        return json.loads(text)["auth"]["client_token"]
    except (ValueError, KeyError, TypeError):
        raise CaseError("login %s failed: HTTP %s: %s" % (user, st, text.strip()[:200]))


def make_token(client, root, case):
    if case.get("login"):
        return login_token(client, root, case)
    body = {
        "policies": case["policies"],
        "no_default_policy": bool(case.get("no_default_policy", False)),
        "ttl": "10m",
    }
    st, text = client.request("POST", "/v1/auth/token/create", root, body)
    try:
        if st != 200:
            raise ValueError
        return json.loads(text)["auth"]["client_token"]
    except (ValueError, KeyError, TypeError):
        raise CaseError("token create failed: HTTP %s: %s" % (st, text.strip()[:200]))


def run_case(client, root, case):
    # Setup steps run with the root token; they make the case independent of
    # whatever ran before (e.g. delete a key so a PUT is a create).
    for step in case.get("setup", []):
        st, text = client.request(step["method"], step["path"], root, step.get("body"))
        if st not in (200, 204, 404):
            raise CaseError("setup %s %s failed: HTTP %s: %s"
                            % (step["method"], step["path"], st, text.strip()[:200]))
    # "token": "none" sends no token, "bogus" an invalid one; otherwise the
    # runner creates a fresh token with exactly the case's policies.
    kind = case.get("token")
    if kind == "none":
        token = None
    elif kind == "bogus":
        token = "s.bogusbogusbogusbogusbogu"
    else:
        token = make_token(client, root, case)
    return client.request(case["method"], substitute(case["path"]), token, case.get("body"),
                          case.get("headers"))


def dump_corpus(corpus, path):
    """Write the corpus with one case per line (diff-friendly)."""
    out = ["{"]
    keys = list(corpus.keys())
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        val = corpus[key]
        if key in ALL_SETS or key in ("mounts", "seed"):
            out.append("  %s: [" % json.dumps(key))
            for j, item in enumerate(val):
                c = "," if j < len(val) - 1 else ""
                out.append("    " + json.dumps(item, ensure_ascii=False) + c)
            out.append("  ]" + comma)
        elif key == "policies":
            out.append("  %s: {" % json.dumps(key))
            names = list(val.keys())
            for j, name in enumerate(names):
                c = "," if j < len(names) - 1 else ""
                out.append("    %s: %s%s" % (json.dumps(name), json.dumps(val[name], ensure_ascii=False), c))
            out.append("  }" + comma)
        else:
            out.append("  %s: %s%s" % (json.dumps(key), json.dumps(val, ensure_ascii=False), comma))
    out.append("}")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Differential ACL corpus runner")
    ap.add_argument("--addr", required=True)
    ap.add_argument("--token", required=True, help="root token")
    ap.add_argument("--corpus", default=os.path.join(here, "corpus.json"))
    ap.add_argument("--sets", default=None,
                    help="comma-separated case lists to run (default: cases; "
                         "with --record: all of %s)" % ",".join(ALL_SETS))
    ap.add_argument("--record", action="store_true",
                    help="write observed statuses into the corpus (real OpenBao only)")
    ap.add_argument("--only", default=None, help="run only case ids containing this string")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = ap.parse_args()

    with open(args.corpus) as f:
        corpus = json.load(f)
    sets = args.sets.split(",") if args.sets else (list(ALL_SETS) if args.record else ["cases"])

    ids = set()
    for s in ALL_SETS:
        for c in corpus.get(s, []):
            if c["id"] in ids:
                die("duplicate case id " + c["id"])
            ids.add(c["id"])
            for p in c.get("policies", []):
                if p not in corpus.get("policies", {}) and p not in ("default", "root"):
                    die("case %s uses unknown policy %s" % (c["id"], p))

    client = Client(args.addr)
    try:
        prepare(client, args.token, corpus)
    except (urllib.error.URLError, OSError) as e:
        die("cannot reach %s: %s" % (args.addr, e))

    passed = failed = 0
    changed = 0
    for s in sets:
        for case in corpus.get(s, []):
            if args.only and args.only not in case["id"]:
                continue
            try:
                status, text = run_case(client, args.token, case)
            except (urllib.error.URLError, OSError) as e:
                die("%s: request failed: %s" % (case["id"], e))
            except CaseError as e:
                if args.record:
                    die("%s: %s" % (case["id"], e))
                failed += 1
                print("MISMATCH %s: expected %s got error: %s"
                      % (case["id"], case.get("expect_status"), e))
                continue
            body = " ".join(text.split())[:300]
            if args.verbose:
                print("%s %s %s %s -> %s %s" % (s, case["id"], case["method"], case["path"],
                                                status, body[:160]))
            if args.record:
                if case.get("expect_status") != status:
                    changed += 1
                case["expect_status"] = status
                passed += 1
                continue
            if status == case.get("expect_status"):
                passed += 1
            else:
                failed += 1
                print("MISMATCH %s: expected %s got %s: %s"
                      % (case["id"], case.get("expect_status"), status, body))

    if args.record:
        dump_corpus(corpus, args.corpus)
        print("recorded %d cases (%d changed) into %s" % (passed, changed, args.corpus),
              file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
