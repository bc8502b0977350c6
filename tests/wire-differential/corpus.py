"""The wire corpus: an ordered list of requests, generated from the tables below.

Every request is a dict:
  id       unique, stable name (known-differences.json refers to it; globs allowed there)
  method   HTTP method (default GET); sent as given, so LIST, PATCH, FOO... go on the wire
  path     request target (str or bytes, sent verbatim: no normalisation, no escaping)
  json     a body to send as JSON            | body  raw body bytes (or str)
  headers  extra [(name, value)] headers (value str or bytes)
  token    X-Vault-Token (default "root"; None: no token header)
  host     False: no Host header
  raw      the whole request as bytes instead of the fields above ({{addr}} is the server)
  capture  {name: "dotted.path"}: stores a value of this server's JSON answer as {{name}}
  compare  "full" (default) or "status"
  timing   (group, "1x"|"4x"): the big-input pairs whose Coffer times must scale linearly

Templates {{name}} in path, json, body, headers, raw and token are filled from the values the
same server returned earlier, so each server gets its own accessors, wrapping tokens, secret-ids.
Every precondition is made by an earlier request in this list, never outside it.
"""

import json

CORPUS = []


def R(rid, method="GET", path="/", **kw):
    req = {"id": rid, "method": method, "path": path}
    req.update(kw)
    CORPUS.append(req)
    return req


def raw(rid, data, **kw):
    req = {"id": rid, "raw": data, "timeout": 5.0}
    req.update(kw)
    CORPUS.append(req)
    return req


def policy(rules):
    return {"policy": rules}


# ------------------------------------------------------------------------------------------
# 1. Setup: the same mounts, data, policies, tokens and wrapped responses on both servers.
# ------------------------------------------------------------------------------------------


def setup():
    R("setup.mount.kv", "POST", "/v1/sys/mounts/kv", json={"type": "kv", "options": {"version": "1"}})
    R("setup.mount.transit", "POST", "/v1/sys/mounts/transit", json={"type": "transit"})
    R("setup.mount.mm-kv", "POST", "/v1/sys/mounts/mm-kv", json={"type": "kv"})
    R("setup.mount.tune-kv", "POST", "/v1/sys/mounts/tune-kv", json={"type": "kv"})
    R("setup.mount.odd", "POST", "/v1/sys/mounts/odd", json={"type": "kv"})
    R("setup.kv.odd-seed", "PUT", "/v1/odd/seed", json={"a": "b"})
    R("setup.auth.userpass", "POST", "/v1/sys/auth/userpass", json={"type": "userpass"})
    R("setup.auth.approle", "POST", "/v1/sys/auth/approle", json={"type": "approle"})
    R("setup.auth.mm-up", "POST", "/v1/sys/auth/mm-up", json={"type": "userpass"})
    R("setup.policy.p-read", "PUT", "/v1/sys/policy/p-read",
      json=policy('path "kv/*" {\n  capabilities = ["read", "list"]\n}\n'))
    R("setup.policy.p-write", "PUT", "/v1/sys/policies/acl/p-write",
      json=policy('path "kv/*" {\n  capabilities = ["create", "update", "read", "delete", "list"]\n}\n'
                  'path "secret/*" {\n  capabilities = ["create", "update", "read"]\n}\n'))
    R("setup.policy.mm", "PUT", "/v1/sys/policy/mm", json=policy('path "kv/mm" { capabilities = ["read"] }'))
    R("setup.policy.mm-acl", "PUT", "/v1/sys/policies/acl/mm", json=policy('path "kv/mm" { capabilities = ["read"] }'))
    R("setup.kv.seed", "PUT", "/v1/kv/seed", json={"a": "b", "n": 1, "nested": {"x": [1, "y", None]}})
    R("setup.kv.dir", "PUT", "/v1/kv/dir/leaf", json={"a": "b"})
    R("setup.kv.mm", "PUT", "/v1/kv/mm", json={"a": "b"})
    R("setup.kv2.seed", "POST", "/v1/secret/data/seed", json={"data": {"a": "b"}})
    R("setup.kv2.seed2", "POST", "/v1/secret/data/seed", json={"data": {"a": "c"}})
    R("setup.kv2.mm", "POST", "/v1/secret/data/mm", json={"data": {"a": "b"}})
    R("setup.transit.k1", "POST", "/v1/transit/keys/k1", json={})
    R("setup.transit.mm", "POST", "/v1/transit/keys/mm", json={})
    R("setup.transit.ked", "POST", "/v1/transit/keys/ked", json={"type": "ed25519"})
    R("setup.transit.kec", "POST", "/v1/transit/keys/kec", json={"type": "ecdsa-p256"})
    R("setup.transit.kexp", "POST", "/v1/transit/keys/kexp",
      json={"exportable": True, "allow_plaintext_backup": True})
    R("setup.userpass.alice", "POST", "/v1/auth/userpass/users/alice",
      json={"password": "pw-alice", "token_policies": "p-read"})
    R("setup.userpass.mm", "POST", "/v1/auth/userpass/users/mm", json={"password": "pw-mm"})
    R("setup.approle.app", "POST", "/v1/auth/approle/role/app",
      json={"token_policies": ["default", "p-read"], "secret_id_ttl": "1h"})
    R("setup.approle.mm", "POST", "/v1/auth/approle/role/mm", json={})
    R("setup.approle.app.role-id", "GET", "/v1/auth/approle/role/app/role-id", capture={"app_role_id": "data.role_id"})
    R("setup.approle.app.secret-id", "POST", "/v1/auth/approle/role/app/secret-id", json={},
      capture={"app_secret_id": "data.secret_id", "app_secret_id_acc": "data.secret_id_accessor"})
    R("setup.token.roles.mm", "POST", "/v1/auth/token/roles/mm", json={"allowed_policies": ["p-read"]})
    R("setup.token.t1", "POST", "/v1/auth/token/create", json={"policies": ["p-read"], "ttl": "1h"},
      capture={"t1": "auth.client_token", "t1_acc": "auth.accessor"})
    R("setup.token.t2", "POST", "/v1/auth/token/create", json={"policies": ["p-write", "p-read"], "ttl": "1h"},
      capture={"t2": "auth.client_token", "t2_acc": "auth.accessor"})
    R("setup.token.t-nodefault", "POST", "/v1/auth/token/create",
      json={"policies": ["p-read"], "no_default_policy": True, "ttl": "1h"},
      capture={"t3": "auth.client_token", "t3_acc": "auth.accessor"})
    R("setup.token.t-victim", "POST", "/v1/auth/token/create", json={"policies": ["default"], "ttl": "1h"},
      capture={"tv": "auth.client_token", "tv_acc": "auth.accessor"})
    R("setup.wrap.w1", "POST", "/v1/sys/wrapping/wrap", json={"k": "v"}, headers=[("X-Vault-Wrap-TTL", "5m")],
      capture={"w1": "wrap_info.token", "w1_acc": "wrap_info.accessor"})
    R("setup.wrap.w2", "POST", "/v1/sys/wrapping/wrap", json={"k": "v2"}, headers=[("X-Vault-Wrap-TTL", "300")],
      capture={"w2": "wrap_info.token"})
    R("setup.wrap.w3", "GET", "/v1/kv/seed", headers=[("X-Vault-Wrap-TTL", "5m")], capture={"w3": "wrap_info.token"})
    R("setup.wrap.w4", "POST", "/v1/auth/token/create", json={"policies": ["default"]},
      headers=[("X-Vault-Wrap-TTL", "10m")], capture={"w4": "wrap_info.token"})
    R("setup.wrap.w5", "POST", "/v1/sys/wrapping/wrap", json={"k": "v5"}, headers=[("X-Vault-Wrap-TTL", "5m")],
      capture={"w5": "wrap_info.token"})
    R("setup.wrap.w6", "POST", "/v1/sys/wrapping/wrap", json={"k": "v6"}, headers=[("X-Vault-Wrap-TTL", "5m")],
      capture={"w6": "wrap_info.token"})
    R("setup.wrap.w7", "POST", "/v1/sys/wrapping/wrap", json={"k": "v7"}, headers=[("X-Vault-Wrap-TTL", "5m")],
      capture={"w7": "wrap_info.token"})
    R("setup.userpass.alice.login", "POST", "/v1/auth/userpass/login/alice", json={"password": "pw-alice"},
      token=None, capture={"alice_tok": "auth.client_token"})
    R("setup.transit.k1.encrypt", "POST", "/v1/transit/encrypt/k1", json={"plaintext": "aGVsbG8="},
      capture={"ct1": "data.ciphertext"})


# ------------------------------------------------------------------------------------------
# 2. Methods on a spread of paths (the victims mm were made in setup; DELETE comes last).
# ------------------------------------------------------------------------------------------

METHODS = ["GET", "HEAD", "OPTIONS", "LIST", "FOO", "PATCH", "PUT", "POST", "DELETE"]
METHOD_PATHS = [
    "sys/health", "sys/seal-status", "sys/leader", "sys/mounts", "sys/mounts/mm-kv", "sys/mounts/mm-kv/tune",
    "sys/auth", "sys/auth/mm-up", "sys/policy", "sys/policy/mm", "sys/policies/acl", "sys/policies/acl/mm",
    "sys/wrapping/lookup", "sys/wrapping/wrap", "sys/nonexistent", "kv/mm", "kv/", "secret/data/mm",
    "secret/metadata/mm", "secret/metadata/", "secret/config", "transit/keys", "transit/keys/mm",
    "transit/encrypt/mm", "auth/token/lookup-self", "auth/token/accessors", "auth/token/roles/mm",
    "auth/userpass/users/mm", "auth/approle/role/mm", "auth/approle/role/mm/role-id", "nomount/x",
]


def methods():
    for p in METHOD_PATHS:
        for m in METHODS:
            kw = {}
            if m in ("PUT", "POST", "PATCH"):
                kw["json"] = {"x": "y"}
            R("method.%s.%s" % (m, p), m, "/v1/" + p, **kw)
    for p in METHOD_PATHS[:20]:
        R("notoken.GET.%s" % p, "GET", "/v1/" + p, token=None)
        R("badtoken.GET.%s" % p, "GET", "/v1/" + p, token="hvs.notarealtoken0000000000")


# ------------------------------------------------------------------------------------------
# 3. Bodies, sent to several endpoints; writes are read back.
# ------------------------------------------------------------------------------------------


def nest(n, leaf=b"1"):
    return b'{"a":' * n + leaf + b"}" * n


BODIES = [
    ("empty", b"", None),
    ("whitespace", b"  \n\t ", None),
    ("object", b'{"a":"b"}', None),
    ("null", b"null", None),
    ("true", b"true", None),
    ("number", b"123", None),
    ("string", b'"s"', None),
    ("array", b"[1,2]", None),
    ("array-of-objects", b'[{"a":"b"}]', None),
    ("truncated", b'{"a":', None),
    ("trailing-garbage", b'{"a":"b"} x', None),
    ("two-objects", b'{"a":"b"}{"c":"d"}', None),
    ("single-quotes", b"{'a':'b'}", None),
    ("unquoted-key", b'{a:"b"}', None),
    ("trailing-comma", b'{"a":"b",}', None),
    ("comment", b'{"a":"b" /* c */}', None),
    ("nan", b'{"a":NaN}', None),
    ("huge-exponent", b'{"a":1e400}', None),
    ("bignum", b'{"a":123456789012345678901234567890}', None),
    ("negative-zero", b'{"a":-0.0}', None),
    ("duplicate-keys", b'{"a":"b","a":"c"}', None),
    ("bom", b'\xef\xbb\xbf{"a":"b"}', None),
    ("nonutf8-value", b'{"a":"\xff\xfe"}', None),
    ("nonutf8-key", b'{"\xc3\x28":"b"}', None),
    ("latin1", b'{"a":"caf\xe9"}', None),
    ("lone-surrogate", b'{"a":"\\ud800"}', None),
    ("nul-escape", b'{"a":"x\\u0000y"}', None),
    ("raw-nul", b'{"a":"x\x00y"}', None),
    ("raw-control", b'{"a":"x\x01y"}', None),
    ("nested-values", b'{"a":{"b":["c",1,true,null]}}', None),
    ("deep-10", nest(10), None),
    ("deep-100", nest(100), None),
    ("deep-1000", nest(1000), None),
    ("deep-10001", nest(10001), None),
    ("deep-array-5000", b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}", None),
    ("keys-500-strings", json.dumps({"k%d" % i: "v" for i in range(500)}).encode(), None),
    ("keys-501-strings", json.dumps({"k%d" % i: "v" for i in range(501)}).encode(), None),
    ("keys-1000-ints", json.dumps({"k%d" % i: i for i in range(1000)}).encode(), None),
    ("keys-1001-ints", json.dumps({"k%d" % i: i for i in range(1001)}).encode(), None),
    ("array-1000-strings", json.dumps({"a": ["x"] * 1000}).encode(), None),
    ("long-key-100k", json.dumps({"k" * 100000: "v"}).encode(), None),
    ("form", b"a=b&c=d", "application/x-www-form-urlencoded"),
    ("form-no-content-type", b"a=b&c=d", None),
    ("form-json-looking", b'{"a":"b"}', "application/x-www-form-urlencoded"),
    ("form-bad-escape", b"a=%ZZ&b=%", "application/x-www-form-urlencoded"),
    ("form-repeated", b"a=1&a=2", "application/x-www-form-urlencoded"),
    ("form-string", b'"str"', "application/x-www-form-urlencoded"),
    ("multipart", b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--XX--\r\n',
     "multipart/form-data; boundary=XX"),
    ("text-plain-json", b'{"a":"b"}', "text/plain"),
    ("json-charset-latin1", b'{"a":"b"}', "application/json; charset=latin1"),
]

# (name, method, path template ({i}: the body's index), read-back method or None)
BODY_TARGETS = [
    ("kv", "PUT", "/v1/kv/body-{i}", "GET"),
    ("kv2", "POST", "/v1/secret/data/body-{i}", "GET"),
    ("token-create", "POST", "/v1/auth/token/create", None),
    ("policy", "PUT", "/v1/sys/policies/acl/body-{i}", "GET"),
    ("transit-encrypt", "POST", "/v1/transit/encrypt/k1", None),
    ("mount", "POST", "/v1/sys/mounts/body-{i}", None),
    ("userpass", "POST", "/v1/auth/userpass/users/body-{i}", "GET"),
    ("wrap", "POST", "/v1/sys/wrapping/wrap", None),
]


def bodies():
    for tname, method, ptemplate, readback in BODY_TARGETS:
        for i, (bname, data, ctype) in enumerate(BODIES):
            path = ptemplate.format(i=i)
            headers = [("Content-Type", ctype)] if ctype else []
            R("body.%s.%s" % (tname, bname), method, path, body=data, headers=headers)
            if readback:
                R("body.%s.%s.read" % (tname, bname), readback, path)


# ------------------------------------------------------------------------------------------
# 4. Type coercion of common fields.
# ------------------------------------------------------------------------------------------

DURATIONS = [("1h", "1h"), ("int", 3600), ("str-int", "3600"), ("str-s", "3600s"), ("bool", True),
             ("array", []), ("object", {}), ("null", None), ("negative", -1), ("float", 1.5),
             ("fraction-h", "1.5h"), ("empty", ""), ("junk", "abc"), ("huge", 10 ** 20), ("zero", "0"),
             ("days", "1d")]
BOOLS = [("true", True), ("false", False), ("str-true", "true"), ("str-false", "false"), ("one", 1),
         ("zero", 0), ("t", "t"), ("f", "f"), ("str-1", "1"), ("yes", "yes"), ("TRUE", "TRUE"),
         ("null", None), ("array", []), ("two", 2)]
INTS = [("int", 5), ("str", "5"), ("float", 5.0), ("fraction", 5.5), ("junk", "x"), ("bool", True),
        ("negative", -1), ("null", None), ("array", [5])]
STRLISTS = [("csv", "p-read,default"), ("list", ["p-read", "default"]), ("single", "p-read"), ("empty-list", []),
            ("number", 1), ("list-number", [1]), ("null", None), ("empty", ""), ("spaces", " p-read , default ")]
KINDS = {"duration": DURATIONS, "bool": BOOLS, "int": INTS, "strlist": STRLISTS}


def coercion():
    # Token create: read the token back (lookup-self with the new token).
    token_fields = [("ttl", "duration"), ("explicit_max_ttl", "duration"), ("period", "duration"),
                    ("renewable", "bool"), ("no_default_policy", "bool"), ("no_parent", "bool"),
                    ("num_uses", "int"), ("policies", "strlist"), ("display_name", "int"), ("meta", "strlist")]
    for field, kind in token_fields:
        for vname, v in KINDS[kind]:
            rid = "coerce.token.%s.%s" % (field, vname)
            var = ("tok_%s_%s" % (field, vname)).replace("-", "_")
            R(rid, "POST", "/v1/auth/token/create", json={field: v, "policies": ["p-read"]} if field != "policies"
              else {field: v}, capture={var: "auth.client_token"})
            R(rid + ".lookup", "GET", "/v1/auth/token/lookup-self", token="{{%s}}" % var)
    # Approle role: write then read.
    role_fields = [("secret_id_ttl", "duration"), ("token_ttl", "duration"), ("token_max_ttl", "duration"),
                   ("bind_secret_id", "bool"), ("token_num_uses", "int"), ("secret_id_num_uses", "int"),
                   ("token_policies", "strlist"), ("secret_id_bound_cidrs", "strlist")]
    for field, kind in role_fields:
        for vname, v in KINDS[kind]:
            rid = "coerce.approle.%s.%s" % (field, vname)
            path = "/v1/auth/approle/role/c-%s-%s" % (field, vname)
            R(rid, "POST", path, json={field: v})
            R(rid + ".read", "GET", path)
    # Userpass user: write then read.
    for field, kind in [("token_ttl", "duration"), ("token_policies", "strlist"), ("token_no_default_policy", "bool"),
                        ("token_bound_cidrs", "strlist")]:
        for vname, v in KINDS[kind]:
            rid = "coerce.userpass.%s.%s" % (field, vname)
            path = "/v1/auth/userpass/users/c-%s-%s" % (field, vname)
            R(rid, "POST", path, json={field: v, "password": "pw"})
            R(rid + ".read", "GET", path)
    for vname, v in INTS + [("str-pw", "pw")]:
        R("coerce.userpass.password.%s" % vname, "POST", "/v1/auth/userpass/users/c-password-%s" % vname,
          json={"password": v})
    # Mount tuning: tune then read.
    for field, kind in [("default_lease_ttl", "duration"), ("max_lease_ttl", "duration"),
                        ("listing_visibility", "int")]:
        for vname, v in KINDS[kind]:
            rid = "coerce.tune.%s.%s" % (field, vname)
            R(rid, "POST", "/v1/sys/mounts/tune-kv/tune", json={field: v})
            R(rid + ".read", "GET", "/v1/sys/mounts/tune-kv/tune")
            R(rid + ".reset", "POST", "/v1/sys/mounts/tune-kv/tune",
              json={"default_lease_ttl": "768h", "max_lease_ttl": "768h", "listing_visibility": "hidden"})
    # Mount options at enable time.
    for field, vals in [("local", BOOLS), ("seal_wrap", BOOLS)]:
        for vname, v in vals:
            R("coerce.mount.%s.%s" % (field, vname), "POST", "/v1/sys/mounts/c-%s-%s" % (field, vname),
              json={"type": "kv", field: v})
    for vname, v in [("int", 2), ("str", "2"), ("one", 1), ("three", 3), ("junk", "x"), ("bool", True),
                     ("null", None)]:
        R("coerce.mount.version.%s" % vname, "POST", "/v1/sys/mounts/c-version-%s" % vname,
          json={"type": "kv", "options": {"version": v}})
        R("coerce.mount.version.%s.read" % vname, "GET", "/v1/sys/mounts/c-version-%s" % vname)
    # Transit key creation options.
    for field, kind in [("exportable", "bool"), ("derived", "bool"), ("auto_rotate_period", "duration")]:
        for vname, v in KINDS[kind]:
            rid = "coerce.transit.%s.%s" % (field, vname)
            path = "/v1/transit/keys/c-%s-%s" % (field, vname)
            R(rid, "POST", path, json={field: v})
            R(rid + ".read", "GET", path)
    # KV v2 mount config.
    for field, kind in [("max_versions", "int"), ("cas_required", "bool"), ("delete_version_after", "duration")]:
        for vname, v in KINDS[kind]:
            rid = "coerce.kv2config.%s.%s" % (field, vname)
            R(rid, "POST", "/v1/secret/config", json={field: v})
            R(rid + ".read", "GET", "/v1/secret/config")
            R(rid + ".reset", "POST", "/v1/secret/config",
              json={"max_versions": 0, "cas_required": False, "delete_version_after": "0s"})
    # Wrap TTL header values.
    for vname, v in [("5m", "5m"), ("300", "300"), ("0", "0"), ("junk", "abc"), ("negative", "-1"),
                     ("huge", "1000000h"), ("empty", ""), ("float", "1.5"), ("1s", "1s")]:
        R("coerce.wrapttl.%s" % vname, "POST", "/v1/sys/wrapping/wrap", json={"a": "b"},
          headers=[("X-Vault-Wrap-TTL", v)])


# ------------------------------------------------------------------------------------------
# 5. Odd paths and percent-encodings.
# ------------------------------------------------------------------------------------------

ODD_PATHS = [
    ("nul", b"/v1/odd/seed%00"), ("nul-mid", b"/v1/odd/se%00ed"), ("ctl-01", b"/v1/odd/seed%01"),
    ("ctl-1f", b"/v1/odd/a%1Fb"), ("del-7f", b"/v1/odd/a%7Fb"), ("slash-encoded", b"/v1/odd%2Fseed"),
    ("slash-encoded-lower", b"/v1/odd%2fseed"), ("dotdot-encoded", b"/v1/odd/%2e%2e/sys/mounts"),
    ("dotdot", b"/v1/odd/../sys/mounts"), ("dot", b"/v1/./kv/seed"), ("double-slash-root", b"/v1//kv/seed"),
    ("double-slash", b"/v1/odd//seed"), ("trailing-slash", b"/v1/odd/seed/"), ("trailing-2slash", b"/v1/odd/seed//"),
    ("utf8-raw", "/v1/odd/ünï".encode()), ("utf8-encoded", b"/v1/odd/%C3%BCn%C3%AF"),
    ("bad-escape", b"/v1/odd/%ZZ"), ("lone-percent", b"/v1/odd/%"), ("percent-a", b"/v1/odd/%61"),
    ("nonutf8-encoded", b"/v1/odd/%FF%FE"), ("nonutf8-raw", b"/v1/odd/\xff\xfe"), ("query", b"/v1/odd/seed?x=1"),
    ("query-empty", b"/v1/odd/seed?"), ("fragment", b"/v1/odd/seed#frag"), ("upper-v1", b"/V1/kv/seed"),
    ("upper-mount", b"/v1/ODD/seed"), ("v2", b"/v2/kv/seed"), ("v1-bare", b"/v1"), ("v1-slash", b"/v1/"),
    ("root", b"/"), ("ui", b"/ui"), ("health-slash", b"/v1/sys/health/"),
    ("sys-dotdot", b"/v1/sys/../sys/health"), ("space-encoded", b"/v1/odd/a%20b"), ("plus", b"/v1/odd/a+b"),
    ("tab-encoded", b"/v1/odd/a%09b"), ("newline-encoded", b"/v1/odd/a%0Ab"), ("cr-encoded", b"/v1/odd/a%0Db"),
    ("long-1k", b"/v1/odd/" + b"a" * 1000), ("long-10k", b"/v1/odd/" + b"a" * 10000),
    ("long-segments", b"/v1/odd/" + b"a/" * 2000 + b"x"), ("long-32k", b"/v1/odd/" + b"b" * 32000),
    ("asterisk", b"/v1/odd/*"), ("glob-plus", b"/v1/odd/+/x"), ("semicolon", b"/v1/odd/seed;x=1"),
    ("backslash", b"/v1/odd/a\\b"), ("emoji-encoded", b"/v1/odd/%F0%9F%94%91"), ("no-leading-slash", b"v1/kv/seed"),
    ("sys-nul", b"/v1/sys/mounts%00"), ("sys-policy-nul", b"/v1/sys/policy/a%00b"),
    ("secret-data-nul", b"/v1/secret/data/a%00b"), ("transit-nul", b"/v1/transit/keys/a%00b"),
]


def odd_paths():
    for name, p in ODD_PATHS:
        if name == "long-32k":
            # OpenBao's time grows with the square of the path length (about 9 s at 100 kB).
            R("path.GET.%s" % name, "GET", p)
            continue
        R("path.GET.%s" % name, "GET", p)
        R("path.PUT.%s" % name, "PUT", p, json={"odd": "path"})
        R("path.LIST.%s" % name, "LIST", p)
        R("path.GET-after.%s" % name, "GET", p)


# ------------------------------------------------------------------------------------------
# 6. Raw HTTP oddities (raw sockets; {{addr}} is each server's own address).
# ------------------------------------------------------------------------------------------

H = b"Host: {{addr}}\r\n"
TOK = b"X-Vault-Token: root\r\n"
CLOSE = b"Connection: close\r\n"


def rawhttp():
    raw("raw.http10", b"GET /v1/sys/health HTTP/1.0\r\n\r\n")
    raw("raw.http10-host", b"GET /v1/kv/seed HTTP/1.0\r\n" + H + TOK + b"\r\n")
    raw("raw.http11-no-host", b"GET /v1/sys/health HTTP/1.1\r\n" + CLOSE + b"\r\n")
    raw("raw.http11-two-hosts", b"GET /v1/sys/health HTTP/1.1\r\n" + H + H + CLOSE + b"\r\n")
    raw("raw.http09", b"GET /v1/sys/health\r\n\r\n")
    raw("raw.http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    raw("raw.http-version-9", b"GET /v1/sys/health HTTP/9.9\r\n" + H + CLOSE + b"\r\n")
    raw("raw.lowercase-method", b"get /v1/sys/health HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.absolute-uri", b"GET http://{{addr}}/v1/sys/health HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.asterisk-options", b"OPTIONS * HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.connect", b"CONNECT {{addr}} HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.trace", b"TRACE /v1/sys/health HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.extra-spaces", b"GET  /v1/sys/health  HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.lf-only", b"GET /v1/sys/health HTTP/1.1\n" + H.replace(b"\r\n", b"\n") + b"Connection: close\n\n")
    raw("raw.header-no-colon", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"NoColonHere\r\n" + CLOSE + b"\r\n")
    raw("raw.header-space-before-colon", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A : b\r\n" + CLOSE + b"\r\n")
    raw("raw.header-obs-fold", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n" + CLOSE + b"\r\n")
    raw("raw.header-nul", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n" + CLOSE + b"\r\n")
    raw("raw.header-empty-name", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b": b\r\n" + CLOSE + b"\r\n")
    raw("raw.header-64k", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A: " + b"a" * 65536 + b"\r\n" + CLOSE + b"\r\n")
    raw("raw.header-2m", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A: " + b"a" * 2097152 + b"\r\n" + CLOSE + b"\r\n",
        compare="status")
    raw("raw.headers-500", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(500))
        + CLOSE + b"\r\n")
    raw("raw.token-utf8", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + "X-Vault-Token: tök\r\n".encode()
        + CLOSE + b"\r\n")
    raw("raw.token-nonutf8", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + b"X-Vault-Token: \xff\xfe\r\n"
        + CLOSE + b"\r\n")
    raw("raw.token-empty", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + b"X-Vault-Token: \r\n" + CLOSE + b"\r\n")
    raw("raw.token-twice", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + TOK + b"X-Vault-Token: {{t1}}\r\n"
        + CLOSE + b"\r\n")
    raw("raw.token-bearer", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + b"Authorization: Bearer root\r\n"
        + CLOSE + b"\r\n")
    raw("raw.token-bearer-lower", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H
        + b"Authorization: bearer root\r\n" + CLOSE + b"\r\n")
    raw("raw.token-basic", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + b"Authorization: Basic cm9vdDo=\r\n"
        + CLOSE + b"\r\n")
    raw("raw.token-and-bearer", b"GET /v1/auth/token/lookup-self HTTP/1.1\r\n" + H + b"X-Vault-Token: {{t1}}\r\n"
        + b"Authorization: Bearer root\r\n" + CLOSE + b"\r\n")
    raw("raw.namespace-root", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Namespace: root\r\n"
        + CLOSE + b"\r\n")
    raw("raw.namespace-other", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Namespace: ns1\r\n"
        + CLOSE + b"\r\n")
    raw("raw.namespace-slash", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Namespace: /\r\n" + CLOSE + b"\r\n")
    raw("raw.x-vault-request", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Request: true\r\n" + CLOSE + b"\r\n")
    raw("raw.pipelined-gets", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"
        + b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + CLOSE + b"\r\n")
    raw("raw.pipelined-put-get", b"PUT /v1/kv/pipe HTTP/1.1\r\n" + H + TOK + b"Content-Length: 9\r\n\r\n{\"a\":\"b\"}"
        + b"GET /v1/kv/pipe HTTP/1.1\r\n" + H + TOK + CLOSE + b"\r\n")
    raw("raw.pipelined-three", (b"GET /v1/sys/seal-status HTTP/1.1\r\n" + H + b"\r\n") * 2
        + b"GET /v1/sys/leader HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.pipelined-bad-second", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n" + b"BROKEN\r\n\r\n")
    raw("raw.chunked-ok", b"PUT /v1/kv/chunk HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n" + CLOSE
        + b"\r\n4\r\n{\"a\"\r\n5\r\n:\"b\"}\r\n0\r\n\r\n")
    raw("raw.chunked-ok.read", b"GET /v1/kv/chunk HTTP/1.1\r\n" + H + TOK + CLOSE + b"\r\n")
    raw("raw.chunked-bad-size", b"PUT /v1/kv/chunk2 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n" + CLOSE
        + b"\r\nZZ\r\n{\"a\":\"b\"}\r\n0\r\n\r\n")
    raw("raw.chunked-short", b"PUT /v1/kv/chunk3 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n" + CLOSE
        + b"\r\n20\r\n{\"a\":\"b\"}\r\n0\r\n\r\n", half_close=True)
    raw("raw.chunked-no-crlf", b"PUT /v1/kv/chunk4 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n" + CLOSE
        + b"\r\n9\r\n{\"a\":\"b\"}XX0\r\n\r\n")
    raw("raw.chunked-no-terminator", b"PUT /v1/kv/chunk5 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n"
        + CLOSE + b"\r\n9\r\n{\"a\":\"b\"}\r\n", half_close=True)
    raw("raw.chunked-huge-size", b"PUT /v1/kv/chunk6 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n" + CLOSE
        + b"\r\nFFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n", half_close=True)
    raw("raw.chunked-and-length", b"PUT /v1/kv/chunk7 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked\r\n"
        + b"Content-Length: 3\r\n" + CLOSE + b"\r\n9\r\n{\"a\":\"b\"}\r\n0\r\n\r\n")
    raw("raw.te-gzip", b"PUT /v1/kv/chunk8 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: gzip\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}", half_close=True)
    raw("raw.te-chunked-twice", b"PUT /v1/kv/chunk9 HTTP/1.1\r\n" + H + TOK + b"Transfer-Encoding: chunked, chunked\r\n"
        + CLOSE + b"\r\n9\r\n{\"a\":\"b\"}\r\n0\r\n\r\n")
    raw("raw.content-encoding-gzip", b"PUT /v1/kv/gz HTTP/1.1\r\n" + H + TOK + b"Content-Encoding: gzip\r\n"
        + b"Content-Length: 9\r\n" + CLOSE + b"\r\n{\"a\":\"b\"}")
    raw("raw.length-negative", b"PUT /v1/kv/cl1 HTTP/1.1\r\n" + H + TOK + b"Content-Length: -1\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}")
    raw("raw.length-junk", b"PUT /v1/kv/cl2 HTTP/1.1\r\n" + H + TOK + b"Content-Length: abc\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}")
    raw("raw.length-two-different", b"PUT /v1/kv/cl3 HTTP/1.1\r\n" + H + TOK + b"Content-Length: 9\r\n"
        + b"Content-Length: 10\r\n" + CLOSE + b"\r\n{\"a\":\"b\"}")
    raw("raw.length-short", b"PUT /v1/kv/cl4 HTTP/1.1\r\n" + H + TOK + b"Content-Length: 4\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}")
    raw("raw.length-long", b"PUT /v1/kv/cl5 HTTP/1.1\r\n" + H + TOK + b"Content-Length: 100\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}", half_close=True)
    raw("raw.length-huge", b"PUT /v1/kv/cl6 HTTP/1.1\r\n" + H + TOK + b"Content-Length: 99999999999\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}", half_close=True)
    raw("raw.get-with-body", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"Content-Length: 9\r\n" + CLOSE
        + b"\r\n{\"a\":\"b\"}")
    raw("raw.expect-100", b"PUT /v1/kv/expect HTTP/1.1\r\n" + H + TOK + b"Expect: 100-continue\r\n"
        + b"Content-Length: 9\r\n" + CLOSE + b"\r\n{\"a\":\"b\"}")
    raw("raw.expect-junk", b"PUT /v1/kv/expect2 HTTP/1.1\r\n" + H + TOK + b"Expect: something\r\n"
        + b"Content-Length: 9\r\n" + CLOSE + b"\r\n{\"a\":\"b\"}")
    raw("raw.keepalive-then-close", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"Connection: keep-alive\r\n\r\n",
        half_close=True)
    raw("raw.upgrade-websocket", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\n"
        + b"Connection: Upgrade\r\n\r\n", half_close=True)
    raw("raw.garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", half_close=True)
    raw("raw.only-crlf", b"\r\n\r\n", half_close=True)
    raw("raw.method-long", b"A" * 10000 + b" /v1/sys/health HTTP/1.1\r\n" + H + CLOSE + b"\r\n")
    raw("raw.method-nonascii", "GÉT /v1/sys/health HTTP/1.1\r\n".encode() + H + CLOSE + b"\r\n")
    raw("raw.x-forwarded-for", b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-Forwarded-For: 10.0.0.1\r\n" + CLOSE
        + b"\r\n")
    raw("raw.wrap-ttl-on-list", b"LIST /v1/kv/ HTTP/1.1\r\n" + H + TOK + b"X-Vault-Wrap-TTL: 5m\r\n" + CLOSE + b"\r\n")
    raw("raw.policy-override", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Policy-Override: true\r\n"
        + CLOSE + b"\r\n")
    raw("raw.mfa-header", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-MFA: x:y\r\n" + CLOSE + b"\r\n")
    raw("raw.inconsistent", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Inconsistent: forward-active-node\r\n"
        + CLOSE + b"\r\n")
    raw("raw.index-header", b"GET /v1/kv/seed HTTP/1.1\r\n" + H + TOK + b"X-Vault-Index: junk\r\n" + CLOSE + b"\r\n")


# ------------------------------------------------------------------------------------------
# 7. sys/health parameters.
# ------------------------------------------------------------------------------------------


def health():
    params = ["", "standbyok=true", "standbyok=false", "standbyok=junk", "perfstandbyok=true",
              "activecode=200", "activecode=204", "activecode=299", "activecode=100", "activecode=418",
              "activecode=600", "activecode=999", "activecode=1000", "activecode=-1", "activecode=0",
              "activecode=abc", "activecode=", "activecode=200.5", "activecode=503", "sealedcode=200",
              "uninitcode=200", "standbycode=200", "drsecondarycode=200", "performancestandbycode=200",
              "removedcode=200", "haunhealthycode=200", "unknown=1", "activecode=200&activecode=201",
              "activecode=%32%30%31", "activecode=301", "activecode=404", "activecode=500"]
    for p in params:
        name = p or "none"
        q = ("?" + p) if p else ""
        # A status the client asks for is no server error, even when it is >= 500.
        asked = any(c in p for c in ("=5", "=6", "=9"))
        R("health.GET.%s" % name, "GET", "/v1/sys/health" + q, token=None, asked_5xx=asked)
        R("health.HEAD.%s" % name, "HEAD", "/v1/sys/health" + q, token=None, asked_5xx=asked)


# ------------------------------------------------------------------------------------------
# 8. auth/token/*
# ------------------------------------------------------------------------------------------


def token():
    T = "/v1/auth/token/"
    R("token.lookup-self.root", "GET", T + "lookup-self")
    R("token.lookup-self.t1", "GET", T + "lookup-self", token="{{t1}}")
    R("token.lookup-self.t3", "GET", T + "lookup-self", token="{{t3}}")
    R("token.lookup-self.alice", "GET", T + "lookup-self", token="{{alice_tok}}")
    R("token.lookup-self.POST", "POST", T + "lookup-self", json={}, token="{{t1}}")
    R("token.lookup.body", "POST", T + "lookup", json={"token": "{{t1}}"})
    R("token.lookup.body-bad", "POST", T + "lookup", json={"token": "hvs.nope"})
    R("token.lookup.body-empty", "POST", T + "lookup", json={})
    R("token.lookup.body-number", "POST", T + "lookup", json={"token": 5})
    R("token.lookup.get-path", "GET", T + "lookup/{{t1}}")
    R("token.lookup.get", "GET", T + "lookup")
    R("token.lookup-accessor", "POST", T + "lookup-accessor", json={"accessor": "{{t1_acc}}"})
    R("token.lookup-accessor.path", "POST", T + "lookup-accessor/{{t1_acc}}", json={})
    R("token.lookup-accessor.bad", "POST", T + "lookup-accessor", json={"accessor": "nope"})
    R("token.lookup-accessor.empty", "POST", T + "lookup-accessor", json={})
    R("token.lookup-accessor.by-t1", "POST", T + "lookup-accessor", json={"accessor": "{{t1_acc}}"}, token="{{t1}}")
    R("token.accessors.list", "LIST", T + "accessors", compare="status")
    R("token.accessors.get-list", "GET", T + "accessors?list=true", compare="status")
    R("token.create.plain", "POST", T + "create", json={})
    R("token.create.policies", "POST", T + "create", json={"policies": ["p-read", "default"]})
    R("token.create.policies-order", "POST", T + "create", json={"policies": ["p-write", "default", "p-read"]})
    R("token.create.meta", "POST", T + "create", json={"meta": {"a": "b"}})
    R("token.create.meta-nonstring", "POST", T + "create", json={"meta": {"a": 1}})
    R("token.create.id", "POST", T + "create", json={"id": "custom-token-id-1"})
    R("token.create.id.lookup", "POST", T + "lookup", json={"token": "custom-token-id-1"})
    R("token.create.id-dup", "POST", T + "create", json={"id": "custom-token-id-1"})
    R("token.create.type-batch", "POST", T + "create", json={"type": "batch", "policies": ["p-read"]})
    R("token.create.type-junk", "POST", T + "create", json={"type": "junk"})
    R("token.create.unknown-policy", "POST", T + "create", json={"policies": ["nope-policy"]})
    R("token.create.root-policy-by-child", "POST", T + "create", json={"policies": ["root"]}, token="{{t1}}")
    R("token.create.child-subset", "POST", T + "create", json={"policies": ["p-read"]}, token="{{t2}}")
    R("token.create.child-superset", "POST", T + "create", json={"policies": ["p-write"]}, token="{{t1}}")
    R("token.create.child-no-policies", "POST", T + "create", json={}, token="{{t2}}")
    R("token.create-orphan", "POST", T + "create-orphan", json={"policies": ["p-read"]})
    R("token.create-orphan.by-t1", "POST", T + "create-orphan", json={"policies": ["p-read"]}, token="{{t1}}")
    R("token.create.role", "POST", T + "create/mm", json={"policies": ["p-read"]})
    R("token.create.role-bad-policy", "POST", T + "create/mm", json={"policies": ["p-write"]})
    R("token.create.role-missing", "POST", T + "create/nope-role", json={})
    R("token.create.wrapped", "POST", T + "create", json={"policies": ["default"]}, headers=[("X-Vault-Wrap-TTL", "1m")])
    R("token.renew-self.t1", "POST", T + "renew-self", json={}, token="{{t1}}")
    R("token.renew-self.increment", "POST", T + "renew-self", json={"increment": "30m"}, token="{{t1}}")
    R("token.renew-self.root", "POST", T + "renew-self", json={})
    R("token.renew.body", "POST", T + "renew", json={"token": "{{t1}}"})
    R("token.renew.path", "POST", T + "renew/{{t1}}", json={})
    R("token.renew.bad", "POST", T + "renew", json={"token": "hvs.nope"})
    R("token.renew.empty", "POST", T + "renew", json={})
    R("token.renew-accessor", "POST", T + "renew-accessor", json={"accessor": "{{t1_acc}}"})
    R("token.roles.list", "LIST", T + "roles")
    R("token.roles.read", "GET", T + "roles/mm")
    R("token.roles.write", "POST", T + "roles/r2", json={"allowed_policies": "p-read,default", "orphan": True,
                                                         "token_period": "1h", "renewable": False})
    R("token.roles.r2.read", "GET", T + "roles/r2")
    R("token.roles.write-bad-type", "POST", T + "roles/r3", json={"token_type": "nope"})
    R("token.roles.read-missing", "GET", T + "roles/nope")
    R("token.roles.delete", "DELETE", T + "roles/r2")
    R("token.roles.delete-again", "DELETE", T + "roles/r2")
    R("token.roles.list-after", "LIST", T + "roles")
    R("token.tidy", "POST", T + "tidy", json={}, compare="status")
    R("token.revoke-accessor", "POST", T + "revoke-accessor", json={"accessor": "{{tv_acc}}"})
    R("token.revoke-accessor.again", "POST", T + "revoke-accessor", json={"accessor": "{{tv_acc}}"})
    R("token.revoked.lookup", "POST", T + "lookup", json={"token": "{{tv}}"})
    R("token.revoked.use", "GET", T + "lookup-self", token="{{tv}}")
    R("token.revoke.body", "POST", T + "revoke", json={"token": "{{t3}}"})
    R("token.revoke.again", "POST", T + "revoke", json={"token": "{{t3}}"})
    R("token.revoke.empty", "POST", T + "revoke", json={})
    R("token.revoke-orphan", "POST", T + "revoke-orphan", json={"token": "hvs.nope"})
    R("token.revoke-self.alice", "POST", T + "revoke-self", json={}, token="{{alice_tok}}")
    R("token.revoke-self.alice.again", "POST", T + "revoke-self", json={}, token="{{alice_tok}}")
    R("token.lookup-self.none", "GET", T + "lookup-self", token=None)
    R("token.lookup-self.bogus", "GET", T + "lookup-self", token="bogus")
    R("token.unknown", "GET", T + "nope")


# ------------------------------------------------------------------------------------------
# 9. KV v1 and v2
# ------------------------------------------------------------------------------------------


def kv():
    R("kv1.read", "GET", "/v1/kv/seed")
    R("kv1.read-missing", "GET", "/v1/kv/missing")
    R("kv1.list", "LIST", "/v1/kv/")
    R("kv1.list-get", "GET", "/v1/kv/?list=true")
    R("kv1.list-get-1", "GET", "/v1/kv?list=1")
    R("kv1.list-no-slash", "LIST", "/v1/kv")
    R("kv1.list-dir", "LIST", "/v1/kv/dir")
    R("kv1.list-missing", "LIST", "/v1/kv/missing/")
    R("kv1.write-types", "PUT", "/v1/kv/types", json={"s": "x", "n": 1.5, "b": True, "z": None, "l": [1], "o": {}})
    R("kv1.read-types", "GET", "/v1/kv/types")
    R("kv1.write-ttl", "PUT", "/v1/kv/ttl", json={"ttl": "1h", "a": "b"})
    R("kv1.read-ttl", "GET", "/v1/kv/ttl")
    R("kv1.write-ttl-bad", "PUT", "/v1/kv/ttl2", json={"ttl": "abc"})
    R("kv1.write-lease", "PUT", "/v1/kv/lease", json={"lease": "30m"})
    R("kv1.read-lease", "GET", "/v1/kv/lease")
    R("kv1.write-empty-obj", "PUT", "/v1/kv/empty", json={})
    R("kv1.write-post", "POST", "/v1/kv/post", json={"a": "b"})
    R("kv1.patch", "PATCH", "/v1/kv/seed", json={"a": "c"})
    R("kv1.delete", "DELETE", "/v1/kv/post")
    R("kv1.delete-again", "DELETE", "/v1/kv/post")
    R("kv1.read-deleted", "GET", "/v1/kv/post")
    R("kv1.t1-read", "GET", "/v1/kv/seed", token="{{t1}}")
    R("kv1.t1-write", "PUT", "/v1/kv/t1", json={"a": "b"}, token="{{t1}}")
    R("kv1.t2-write", "PUT", "/v1/kv/t2", json={"a": "b"}, token="{{t2}}")
    R("kv1.t1-list", "LIST", "/v1/kv/", token="{{t1}}")
    R("kv1.wrapped-read", "GET", "/v1/kv/seed", headers=[("X-Vault-Wrap-TTL", "1m")])
    S = "/v1/secret/"
    R("kv2.read", "GET", S + "data/seed")
    R("kv2.read-v1", "GET", S + "data/seed?version=1")
    R("kv2.read-v9", "GET", S + "data/seed?version=9")
    R("kv2.read-vjunk", "GET", S + "data/seed?version=x")
    R("kv2.read-missing", "GET", S + "data/missing")
    R("kv2.write-no-data", "POST", S + "data/nodata", json={"a": "b"})
    R("kv2.write-data-string", "POST", S + "data/datastr", json={"data": "x"})
    R("kv2.write-data-null", "POST", S + "data/datanull", json={"data": None})
    R("kv2.write-cas0", "POST", S + "data/cas", json={"data": {"a": "b"}, "options": {"cas": 0}})
    R("kv2.write-cas0-again", "POST", S + "data/cas", json={"data": {"a": "b"}, "options": {"cas": 0}})
    R("kv2.write-cas1", "POST", S + "data/cas", json={"data": {"a": "c"}, "options": {"cas": 1}})
    R("kv2.write-cas-str", "POST", S + "data/cas", json={"data": {"a": "c"}, "options": {"cas": "2"}})
    R("kv2.write-cas-junk", "POST", S + "data/cas", json={"data": {"a": "c"}, "options": {"cas": "x"}})
    R("kv2.write-options-string", "POST", S + "data/cas", json={"data": {"a": "c"}, "options": "x"})
    R("kv2.patch", "PATCH", S + "data/seed", json={"data": {"b": "d"}})
    R("kv2.patch-missing", "PATCH", S + "data/missing", json={"data": {"b": "d"}})
    R("kv2.patch-wrong-ct", "PATCH", S + "data/seed", body=b'{"data":{"c":"e"}}',
      headers=[("Content-Type", "application/json")])
    R("kv2.read-after-patch", "GET", S + "data/seed")
    R("kv2.subkeys", "GET", S + "subkeys/seed")
    R("kv2.subkeys-depth", "GET", S + "subkeys/seed?depth=1")
    R("kv2.metadata", "GET", S + "metadata/seed")
    R("kv2.metadata-list", "LIST", S + "metadata/")
    R("kv2.metadata-list-missing", "LIST", S + "metadata/nope/")
    R("kv2.metadata-write", "POST", S + "metadata/seed", json={"max_versions": 5, "custom_metadata": {"o": "me"}})
    R("kv2.metadata-write-bad-custom", "POST", S + "metadata/seed", json={"custom_metadata": {"o": 1}})
    R("kv2.metadata-read-after", "GET", S + "metadata/seed")
    R("kv2.metadata-patch", "PATCH", S + "metadata/seed", json={"max_versions": 6})
    R("kv2.delete-latest", "DELETE", S + "data/seed")
    R("kv2.read-deleted", "GET", S + "data/seed")
    R("kv2.undelete", "POST", S + "undelete/seed", json={"versions": [3]})
    R("kv2.undelete-str", "POST", S + "undelete/seed", json={"versions": "1"})
    R("kv2.undelete-empty", "POST", S + "undelete/seed", json={})
    R("kv2.delete-versions", "POST", S + "delete/seed", json={"versions": [1]})
    R("kv2.delete-versions-bad", "POST", S + "delete/seed", json={"versions": ["x"]})
    R("kv2.destroy", "PUT", S + "destroy/seed", json={"versions": [2]})
    R("kv2.destroy-empty", "PUT", S + "destroy/seed", json={})
    R("kv2.read-v2-destroyed", "GET", S + "data/seed?version=2")
    R("kv2.metadata-after-destroy", "GET", S + "metadata/seed")
    R("kv2.config", "GET", S + "config")
    R("kv2.metadata-delete", "DELETE", S + "metadata/mm2")
    R("kv2.t1-read", "GET", S + "data/seed", token="{{t1}}")
    R("kv2.t2-write", "POST", S + "data/t2", json={"data": {"a": "b"}}, token="{{t2}}")
    R("kv2.t2-read", "GET", S + "data/t2", token="{{t2}}")
    R("kv2.data-list", "LIST", S + "data/")
    R("kv2.mount-v2", "POST", "/v1/sys/mounts/kv2b", json={"type": "kv", "options": {"version": "2"}})
    R("kv2.mount-v2.write-before-ready", "POST", "/v1/kv2b/data/x", json={"data": {"a": "b"}}, compare="status")
    R("kv2.bare-path", "GET", S + "seed")
    R("kv2.bare-write", "POST", S + "seed", json={"data": {"a": "b"}})


# ------------------------------------------------------------------------------------------
# 10. Transit
# ------------------------------------------------------------------------------------------


def transit():
    T = "/v1/transit/"
    R("transit.keys.list", "LIST", T + "keys")
    R("transit.keys.read", "GET", T + "keys/k1")
    R("transit.keys.read-missing", "GET", T + "keys/nope")
    for t in ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "ed25519", "ecdsa-p256", "ecdsa-p384",
              "rsa-2048", "hmac", "junk", ""]:
        R("transit.keys.create.%s" % (t or "empty"), "POST", T + "keys/t-%s" % (t or "empty"), json={"type": t})
    R("transit.keys.create.hmac-size", "POST", T + "keys/t-hmac2", json={"type": "hmac", "key_size": 32})
    R("transit.keys.create-existing", "POST", T + "keys/k1", json={"type": "ed25519"})
    R("transit.encrypt", "POST", T + "encrypt/k1", json={"plaintext": "aGVsbG8="})
    R("transit.encrypt.not-base64", "POST", T + "encrypt/k1", json={"plaintext": "not base64!"})
    R("transit.encrypt.empty", "POST", T + "encrypt/k1", json={"plaintext": ""})
    R("transit.encrypt.missing", "POST", T + "encrypt/k1", json={})
    R("transit.encrypt.number", "POST", T + "encrypt/k1", json={"plaintext": 5})
    R("transit.encrypt.autocreate", "POST", T + "encrypt/auto", json={"plaintext": "aGVsbG8="})
    R("transit.encrypt.batch", "POST", T + "encrypt/k1",
      json={"batch_input": [{"plaintext": "aGVsbG8="}, {"plaintext": "bad!"}]})
    R("transit.encrypt.batch-empty", "POST", T + "encrypt/k1", json={"batch_input": []})
    R("transit.encrypt.batch-string", "POST", T + "encrypt/k1", json={"batch_input": "x"})
    R("transit.encrypt.context-nonderived", "POST", T + "encrypt/k1", json={"plaintext": "aGVsbG8=", "context": "YQ=="})
    R("transit.encrypt.key-version", "POST", T + "encrypt/k1", json={"plaintext": "aGVsbG8=", "key_version": 9})
    R("transit.decrypt", "POST", T + "decrypt/k1", json={"ciphertext": "{{ct1}}"})
    R("transit.decrypt.junk", "POST", T + "decrypt/k1", json={"ciphertext": "vault:v1:AAAA"})
    R("transit.decrypt.no-prefix", "POST", T + "decrypt/k1", json={"ciphertext": "AAAA"})
    R("transit.decrypt.v9", "POST", T + "decrypt/k1", json={"ciphertext": "vault:v9:AAAA"})
    R("transit.decrypt.missing", "POST", T + "decrypt/k1", json={})
    R("transit.decrypt.wrong-key", "POST", T + "decrypt/mm", json={"ciphertext": "{{ct1}}"})
    R("transit.decrypt.batch", "POST", T + "decrypt/k1",
      json={"batch_input": [{"ciphertext": "{{ct1}}"}, {"ciphertext": "vault:v1:AAAA"}]})
    R("transit.rotate", "POST", T + "keys/k1/rotate", json={})
    R("transit.read-after-rotate", "GET", T + "keys/k1")
    R("transit.rewrap", "POST", T + "rewrap/k1", json={"ciphertext": "{{ct1}}"})
    R("transit.config", "POST", T + "keys/k1/config", json={"min_decryption_version": 1, "deletion_allowed": True})
    R("transit.config-bad", "POST", T + "keys/k1/config", json={"min_decryption_version": 9})
    R("transit.config-min-enc", "POST", T + "keys/k1/config", json={"min_encryption_version": 5})
    R("transit.config-read", "GET", T + "keys/k1/config")
    R("transit.trim", "POST", T + "keys/k1/trim", json={"min_available_version": 1})
    R("transit.trim-bad", "POST", T + "keys/k1/trim", json={"min_available_version": 0})
    R("transit.export-not-exportable", "GET", T + "export/encryption-key/k1")
    R("transit.export", "GET", T + "export/encryption-key/kexp")
    R("transit.export-v1", "GET", T + "export/encryption-key/kexp/1")
    R("transit.export-bad-type", "GET", T + "export/nope-key/kexp")
    R("transit.backup-not-allowed", "GET", T + "backup/k1")
    R("transit.backup", "GET", T + "backup/kexp", capture={"backup": "data.backup"})
    R("transit.restore-existing", "POST", T + "restore/kexp", json={"backup": "{{backup}}"})
    R("transit.restore-new", "POST", T + "restore/kexp2", json={"backup": "{{backup}}"})
    R("transit.restore-force", "POST", T + "restore/kexp", json={"backup": "{{backup}}", "force": True})
    R("transit.restore-junk", "POST", T + "restore/kexp3", json={"backup": "junk"})
    R("transit.restore-empty", "POST", T + "restore", json={})
    R("transit.hash", "POST", T + "hash", json={"input": "aGVsbG8="})
    R("transit.hash-sha512", "POST", T + "hash/sha2-512", json={"input": "aGVsbG8="})
    R("transit.hash-bad-alg", "POST", T + "hash/md5", json={"input": "aGVsbG8="})
    R("transit.hash-hex", "POST", T + "hash", json={"input": "aGVsbG8=", "format": "base64"})
    R("transit.hash-bad-format", "POST", T + "hash", json={"input": "aGVsbG8=", "format": "junk"})
    R("transit.hmac", "POST", T + "hmac/k1", json={"input": "aGVsbG8="})
    R("transit.hmac-alg", "POST", T + "hmac/k1/sha2-512", json={"input": "aGVsbG8="})
    R("transit.sign-aes", "POST", T + "sign/k1", json={"input": "aGVsbG8="})
    R("transit.sign-ed", "POST", T + "sign/ked", json={"input": "aGVsbG8="}, capture={"sig_ed": "data.signature"})
    R("transit.verify-ed", "POST", T + "verify/ked", json={"input": "aGVsbG8=", "signature": "{{sig_ed}}"})
    R("transit.verify-ed-bad", "POST", T + "verify/ked", json={"input": "aGVsbG8=", "signature": "vault:v1:AAAA"})
    R("transit.sign-ec", "POST", T + "sign/kec", json={"input": "aGVsbG8="}, capture={"sig_ec": "data.signature"})
    R("transit.verify-ec", "POST", T + "verify/kec", json={"input": "aGVsbG8=", "signature": "{{sig_ec}}"})
    R("transit.verify-ec-other-input", "POST", T + "verify/kec", json={"input": "aGk=", "signature": "{{sig_ec}}"})
    R("transit.random", "POST", T + "random", json={})
    R("transit.random-32", "POST", T + "random/32", json={})
    R("transit.random-hex", "POST", T + "random/16", json={"format": "hex"})
    R("transit.random-bad", "POST", T + "random/junk", json={})
    R("transit.random-huge", "POST", T + "random/1000000", json={})
    R("transit.datakey", "POST", T + "datakey/plaintext/k1", json={})
    R("transit.datakey-wrapped", "POST", T + "datakey/wrapped/k1", json={})
    R("transit.datakey-bad", "POST", T + "datakey/junk/k1", json={})
    R("transit.cache-config", "GET", T + "cache-config")
    R("transit.delete-not-allowed", "DELETE", T + "keys/mm")
    R("transit.delete-allowed", "DELETE", T + "keys/k1")
    R("transit.read-deleted", "GET", T + "keys/k1")


# ------------------------------------------------------------------------------------------
# 11. Userpass and AppRole
# ------------------------------------------------------------------------------------------


def userpass():
    U = "/v1/auth/userpass/"
    R("userpass.list", "LIST", U + "users")
    R("userpass.read", "GET", U + "users/alice")
    R("userpass.read-missing", "GET", U + "users/nope")
    R("userpass.create-no-password", "POST", U + "users/nopw", json={})
    R("userpass.create-upper", "POST", U + "users/Bob", json={"password": "pw"})
    R("userpass.read-lower", "GET", U + "users/bob")
    R("userpass.login", "POST", U + "login/alice", json={"password": "pw-alice"}, token=None)
    R("userpass.login-wrong", "POST", U + "login/alice", json={"password": "nope"}, token=None)
    R("userpass.login-missing-user", "POST", U + "login/nope", json={"password": "x"}, token=None)
    R("userpass.login-no-password", "POST", U + "login/alice", json={}, token=None)
    R("userpass.login-upper", "POST", U + "login/ALICE", json={"password": "pw-alice"}, token=None)
    R("userpass.login-get", "GET", U + "login/alice", token=None)
    R("userpass.login-with-token", "POST", U + "login/alice", json={"password": "pw-alice"})
    R("userpass.login-wrapped", "POST", U + "login/alice", json={"password": "pw-alice"}, token=None,
      headers=[("X-Vault-Wrap-TTL", "1m")])
    R("userpass.password", "POST", U + "users/alice/password", json={"password": "pw2"})
    R("userpass.password-empty", "POST", U + "users/alice/password", json={})
    R("userpass.login-new", "POST", U + "login/alice", json={"password": "pw2"}, token=None,
      capture={"alice2": "auth.client_token"})
    R("userpass.alice2.lookup", "GET", "/v1/auth/token/lookup-self", token="{{alice2}}")
    R("userpass.policies", "POST", U + "users/alice/policies", json={"token_policies": "p-write"})
    R("userpass.policies-legacy", "POST", U + "users/alice/policies", json={"policies": "p-read"})
    R("userpass.read-after", "GET", U + "users/alice")
    R("userpass.delete", "DELETE", U + "users/bob")
    R("userpass.delete-missing", "DELETE", U + "users/bob")
    R("userpass.login-deleted", "POST", U + "login/bob", json={"password": "pw"}, token=None)


def approle():
    A = "/v1/auth/approle/"
    R("approle.list", "LIST", A + "role")
    R("approle.read", "GET", A + "role/app")
    R("approle.read-missing", "GET", A + "role/nope")
    R("approle.role-id", "GET", A + "role/app/role-id")
    R("approle.role-id-set", "POST", A + "role/mm/role-id", json={"role_id": "fixed-role-id"})
    R("approle.role-id-read", "GET", A + "role/mm/role-id")
    R("approle.role-id-missing-role", "GET", A + "role/nope/role-id")
    R("approle.secret-id", "POST", A + "role/app/secret-id", json={"metadata": "{\"a\":\"b\"}"},
      capture={"sid2": "data.secret_id", "sid2_acc": "data.secret_id_accessor"})
    R("approle.secret-id-bad-meta", "POST", A + "role/app/secret-id", json={"metadata": "x"})
    R("approle.secret-id-list", "LIST", A + "role/app/secret-id", compare="status")
    R("approle.secret-id-lookup", "POST", A + "role/app/secret-id/lookup", json={"secret_id": "{{sid2}}"})
    R("approle.secret-id-lookup-bad", "POST", A + "role/app/secret-id/lookup", json={"secret_id": "nope"})
    R("approle.secret-id-accessor-lookup", "POST", A + "role/app/secret-id-accessor/lookup",
      json={"secret_id_accessor": "{{sid2_acc}}"})
    R("approle.secret-id-accessor-lookup-bad", "POST", A + "role/app/secret-id-accessor/lookup",
      json={"secret_id_accessor": "nope"})
    R("approle.custom-secret-id", "POST", A + "role/app/custom-secret-id", json={"secret_id": "my-custom-sid"})
    R("approle.login", "POST", A + "login", json={"role_id": "{{app_role_id}}", "secret_id": "{{app_secret_id}}"},
      token=None, capture={"app_tok": "auth.client_token"})
    R("approle.login.lookup", "GET", "/v1/auth/token/lookup-self", token="{{app_tok}}")
    R("approle.login-custom", "POST", A + "login", json={"role_id": "{{app_role_id}}", "secret_id": "my-custom-sid"},
      token=None)
    R("approle.login-bad-secret", "POST", A + "login", json={"role_id": "{{app_role_id}}", "secret_id": "nope"},
      token=None)
    R("approle.login-bad-role", "POST", A + "login", json={"role_id": "nope", "secret_id": "nope"}, token=None)
    R("approle.login-no-role", "POST", A + "login", json={}, token=None)
    R("approle.login-no-secret", "POST", A + "login", json={"role_id": "{{app_role_id}}"}, token=None)
    R("approle.login-fixed-no-secret", "POST", A + "role/nosec", json={"bind_secret_id": False,
                                                                       "secret_id_bound_cidrs": [],
                                                                       "token_bound_cidrs": ["127.0.0.1/32"]})
    R("approle.nosec.role-id", "GET", A + "role/nosec/role-id", capture={"nosec_rid": "data.role_id"})
    R("approle.nosec.login", "POST", A + "login", json={"role_id": "{{nosec_rid}}"}, token=None)
    R("approle.secret-id-destroy", "POST", A + "role/app/secret-id/destroy", json={"secret_id": "{{sid2}}"})
    R("approle.secret-id-destroy-again", "POST", A + "role/app/secret-id/destroy", json={"secret_id": "{{sid2}}"})
    R("approle.secret-id-accessor-destroy", "POST", A + "role/app/secret-id-accessor/destroy",
      json={"secret_id_accessor": "{{app_secret_id_acc}}"})
    R("approle.login-destroyed", "POST", A + "login", json={"role_id": "{{app_role_id}}",
                                                            "secret_id": "{{app_secret_id}}"}, token=None)
    R("approle.role-policies", "GET", A + "role/app/policies")
    R("approle.role-policies-write", "POST", A + "role/app/policies", json={"token_policies": "default"})
    R("approle.role-field-ttl", "GET", A + "role/app/secret-id-ttl")
    R("approle.role-field-ttl-write", "POST", A + "role/app/secret-id-ttl", json={"secret_id_ttl": "2h"})
    R("approle.role-field-ttl-delete", "DELETE", A + "role/app/secret-id-ttl")
    R("approle.tidy", "POST", A + "tidy/secret-id", json={}, compare="status")
    R("approle.delete", "DELETE", A + "role/mm")
    R("approle.delete-again", "DELETE", A + "role/mm")
    R("approle.bad-name", "POST", A + "role/bad name", json={})


# ------------------------------------------------------------------------------------------
# 12. Policies
# ------------------------------------------------------------------------------------------


def policies():
    good = 'path "kv/x" {\n  capabilities = ["read"]\n}\n'
    for base in ["/v1/sys/policy", "/v1/sys/policies/acl"]:
        tag = "policy" if base.endswith("policy") else "acl"
        R("%s.list" % tag, "GET", base)
        R("%s.list-LIST" % tag, "LIST", base)
        R("%s.read-default" % tag, "GET", base + "/default")
        R("%s.read-root" % tag, "GET", base + "/root")
        R("%s.read-missing" % tag, "GET", base + "/nope")
        R("%s.write" % tag, "PUT", base + "/pt", json={"policy": good})
        R("%s.read" % tag, "GET", base + "/pt")
        R("%s.write-rules" % tag, "PUT", base + "/pt-rules", json={"rules": good})
        R("%s.read-rules" % tag, "GET", base + "/pt-rules")
        R("%s.write-json" % tag, "PUT", base + "/pt-json",
          json={"policy": json.dumps({"path": {"kv/y": {"capabilities": ["read"]}}})})
        R("%s.read-json" % tag, "GET", base + "/pt-json")
        R("%s.write-bad-hcl" % tag, "PUT", base + "/pt-bad", json={"policy": "path {"})
        R("%s.write-bad-cap" % tag, "PUT", base + "/pt-bad2", json={"policy": 'path "a" { capabilities = ["fly"] }'})
        R("%s.write-empty" % tag, "PUT", base + "/pt-empty", json={"policy": ""})
        R("%s.write-missing" % tag, "PUT", base + "/pt-missing", json={})
        R("%s.write-number" % tag, "PUT", base + "/pt-num", json={"policy": 5})
        R("%s.write-root" % tag, "PUT", base + "/root", json={"policy": good})
        R("%s.write-default" % tag, "PUT", base + "/default", json={"policy": good})
        R("%s.read-default-after" % tag, "GET", base + "/default")
        R("%s.write-upper" % tag, "PUT", base + "/PT-Upper", json={"policy": good})
        R("%s.read-upper-lower" % tag, "GET", base + "/pt-upper")
        R("%s.write-unknown-key" % tag, "PUT", base + "/pt-unk", json={"policy": 'pathx "a" {}'})
        R("%s.write-deny-root-path" % tag, "PUT", base + "/pt-deny",
          json={"policy": 'path "*" { capabilities = ["deny"] }'})
        R("%s.write-params" % tag, "PUT", base + "/pt-params",
          json={"policy": 'path "kv/*" {\n capabilities = ["create"]\n allowed_parameters = {"a" = []}\n'
                          ' min_wrapping_ttl = "1m"\n}\n'})
        R("%s.read-params" % tag, "GET", base + "/pt-params")
        R("%s.write-cas" % tag, "PUT", base + "/pt", json={"policy": good, "cas": 0})
        R("%s.delete" % tag, "DELETE", base + "/pt")
        R("%s.delete-again" % tag, "DELETE", base + "/pt")
        R("%s.delete-root" % tag, "DELETE", base + "/root")
        R("%s.delete-default" % tag, "DELETE", base + "/default")
        R("%s.list-after" % tag, "GET", base)
    R("acl.list-LIST-after", "LIST", "/v1/sys/policies/acl")
    R("policies.rgp", "GET", "/v1/sys/policies/rgp")
    R("policies.egp", "GET", "/v1/sys/policies/egp")
    R("policies.password", "GET", "/v1/sys/policies/password/nope")


# ------------------------------------------------------------------------------------------
# 13. Response wrapping
# ------------------------------------------------------------------------------------------


def wrapping():
    W = "/v1/sys/wrapping/"
    R("wrap.wrap", "POST", W + "wrap", json={"a": "b"})
    R("wrap.wrap-header", "POST", W + "wrap", json={"a": "b"}, headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrap-empty", "POST", W + "wrap", body=b"", headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrap-empty-obj", "POST", W + "wrap", json={}, headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrap-nested", "POST", W + "wrap", json={"a": {"b": [1, 2]}}, headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrap-by-t1", "POST", W + "wrap", json={"a": "b"}, token="{{t1}}", headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.lookup-body", "POST", W + "lookup", json={"token": "{{w1}}"})
    R("wrap.lookup-body-notoken", "POST", W + "lookup", json={"token": "{{w1}}"}, token=None)
    R("wrap.lookup-get", "GET", W + "lookup?token={{w1}}", token=None)
    R("wrap.lookup-header", "POST", W + "lookup", json={}, token="{{w7}}")
    R("wrap.lookup-header.then-unwrap", "POST", W + "unwrap", json={"token": "{{w7}}"})
    R("wrap.lookup-bad", "POST", W + "lookup", json={"token": "hvs.nope"})
    R("wrap.lookup-empty", "POST", W + "lookup", json={})
    R("wrap.lookup-non-wrap-token", "POST", W + "lookup", json={"token": "{{t1}}"})
    R("wrap.unwrap-body", "POST", W + "unwrap", json={"token": "{{w1}}"})
    R("wrap.unwrap-body-again", "POST", W + "unwrap", json={"token": "{{w1}}"})
    R("wrap.lookup-after-unwrap", "POST", W + "lookup", json={"token": "{{w1}}"})
    R("wrap.unwrap-header", "POST", W + "unwrap", json={}, token="{{w2}}")
    R("wrap.unwrap-header-nobody", "POST", W + "unwrap", body=b"", token="{{w5}}")
    R("wrap.unwrap-header-again", "POST", W + "unwrap", json={}, token="{{w2}}")
    R("wrap.unwrap-kv", "POST", W + "unwrap", json={"token": "{{w3}}"})
    R("wrap.unwrap-token-create", "POST", W + "unwrap", json={"token": "{{w4}}"})
    R("wrap.unwrap-bad", "POST", W + "unwrap", json={"token": "hvs.nope"})
    R("wrap.unwrap-empty-root", "POST", W + "unwrap", json={})
    R("wrap.unwrap-non-wrap-token", "POST", W + "unwrap", json={"token": "{{t1}}"})
    R("wrap.unwrap-get", "GET", W + "unwrap")
    R("wrap.rewrap", "POST", W + "rewrap", json={"token": "{{w6}}"}, capture={"w6b": "wrap_info.token"})
    R("wrap.rewrap-old", "POST", W + "unwrap", json={"token": "{{w6}}"})
    R("wrap.rewrap-new", "POST", W + "unwrap", json={"token": "{{w6b}}"})
    R("wrap.rewrap-bad", "POST", W + "rewrap", json={"token": "hvs.nope"})
    R("wrap.rewrap-empty", "POST", W + "rewrap", json={})
    R("wrap.wrapped-lookup-self", "GET", "/v1/auth/token/lookup-self", headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrapped-list", "LIST", "/v1/kv/", headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrapped-error", "GET", "/v1/kv/missing", headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.wrapped-write", "PUT", "/v1/kv/wrapwrite", json={"a": "b"}, headers=[("X-Vault-Wrap-TTL", "1m")])
    R("wrap.format-header", "POST", W + "wrap", json={"a": "b"},
      headers=[("X-Vault-Wrap-TTL", "1m"), ("X-Vault-Wrap-Format", "jwt")])
    R("wrap.unknown", "GET", W + "nope")


# ------------------------------------------------------------------------------------------
# 14. sys/mounts and sys/auth
# ------------------------------------------------------------------------------------------


def mounts():
    M = "/v1/sys/mounts"
    R("mounts.list", "GET", M)
    R("mounts.read-kv", "GET", M + "/kv")
    R("mounts.read-secret", "GET", M + "/secret")
    R("mounts.read-sys", "GET", M + "/sys")
    R("mounts.read-missing", "GET", M + "/nope")
    R("mounts.tune-read", "GET", M + "/kv/tune")
    R("mounts.tune-read-sys", "GET", M + "/sys/tune")
    R("mounts.tune-read-missing", "GET", M + "/nope/tune")
    R("mounts.enable-dup", "POST", M + "/kv", json={"type": "kv"})
    R("mounts.enable-no-type", "POST", M + "/m-notype", json={})
    R("mounts.enable-bad-type", "POST", M + "/m-badtype", json={"type": "nope"})
    R("mounts.enable-nested", "POST", M + "/kv/nested", json={"type": "kv"})
    R("mounts.enable-parent", "POST", M + "/k", json={"type": "kv"})
    R("mounts.enable-sys", "POST", M + "/sys", json={"type": "kv"})
    R("mounts.enable-sys-sub", "POST", M + "/sys/x", json={"type": "kv"})
    R("mounts.enable-auth", "POST", M + "/auth", json={"type": "kv"})
    R("mounts.enable-cubbyhole", "POST", M + "/cubbyhole2", json={"type": "cubbyhole"})
    R("mounts.enable-identity", "POST", M + "/identity", json={"type": "kv"})
    R("mounts.enable-full", "POST", M + "/m-full",
      json={"type": "kv", "description": "d", "config": {"default_lease_ttl": "1h", "max_lease_ttl": "2h",
                                                        "listing_visibility": "unauth",
                                                        "audit_non_hmac_request_keys": ["a"]},
            "options": {"version": "2"}, "local": False, "seal_wrap": False})
    R("mounts.read-full", "GET", M + "/m-full")
    R("mounts.tune-full", "GET", M + "/m-full/tune")
    R("mounts.enable-bad-config", "POST", M + "/m-badcfg", json={"type": "kv", "config": {"default_lease_ttl": "x"}})
    R("mounts.enable-bad-config-type", "POST", M + "/m-badcfg2", json={"type": "kv", "config": "x"})
    R("mounts.enable-ttl-over-max", "POST", M + "/m-ttl", json={"type": "kv", "config": {"default_lease_ttl": "3h",
                                                                                          "max_lease_ttl": "2h"}})
    R("mounts.enable-transit2", "POST", M + "/transit2", json={"type": "transit"})
    R("mounts.enable-plugin-name", "POST", M + "/m-plugin", json={"type": "plugin", "plugin_name": "kv"})
    R("mounts.enable-trailing-slash", "POST", M + "/m-slash/", json={"type": "kv"})
    R("mounts.enable-weird-name", "POST", M + "/m weird", json={"type": "kv"})
    R("mounts.tune-desc", "POST", M + "/kv/tune", json={"description": "tuned"})
    R("mounts.tune-bad", "POST", M + "/kv/tune", json={"default_lease_ttl": "x"})
    R("mounts.enable-upgrade", "POST", M + "/upg", json={"type": "kv"})
    R("mounts.tune-options", "POST", M + "/upg/tune", json={"options": {"version": "2"}}, compare="status")
    R("mounts.tune-sys", "POST", M + "/sys/tune", json={"description": "x"})
    R("mounts.tune-missing", "POST", M + "/nope/tune", json={"description": "x"})
    R("mounts.read-after-tune", "GET", M + "/kv")
    R("mounts.list-after", "GET", M)
    R("mounts.disable", "DELETE", M + "/m-full")
    R("mounts.disable-again", "DELETE", M + "/m-full")
    R("mounts.disable-sys", "DELETE", M + "/sys")
    R("mounts.disable-cubbyhole", "DELETE", M + "/cubbyhole")
    R("mounts.remount", "POST", "/v1/sys/remount", json={"from": "transit2", "to": "transit3"}, compare="status")
    A = "/v1/sys/auth"
    R("auth.list", "GET", A)
    R("auth.read", "GET", A + "/userpass")
    R("auth.read-token", "GET", A + "/token")
    R("auth.read-missing", "GET", A + "/nope")
    R("auth.tune-read", "GET", A + "/userpass/tune")
    R("auth.tune-read-token", "GET", A + "/token/tune")
    R("auth.enable-dup", "POST", A + "/userpass", json={"type": "userpass"})
    R("auth.enable-no-type", "POST", A + "/a-notype", json={})
    R("auth.enable-bad-type", "POST", A + "/a-badtype", json={"type": "nope"})
    R("auth.enable-token", "POST", A + "/token2", json={"type": "token"})
    R("auth.enable-full", "POST", A + "/a-full",
      json={"type": "approle", "description": "d", "config": {"default_lease_ttl": "1h", "token_type": "default-batch"},
            "local": True})
    R("auth.read-full", "GET", A + "/a-full")
    R("auth.enable-bad-token-type", "POST", A + "/a-badtt", json={"type": "userpass",
                                                                 "config": {"token_type": "nope"}})
    R("auth.tune", "POST", A + "/userpass/tune", json={"description": "tuned", "token_type": "service"})
    R("auth.tune-bad-token-type", "POST", A + "/userpass/tune", json={"token_type": "nope"})
    R("auth.tune-token", "POST", A + "/token/tune", json={"description": "x"})
    R("auth.tune-read-after", "GET", A + "/userpass/tune")
    R("auth.list-after", "GET", A)
    R("auth.disable", "DELETE", A + "/a-full")
    R("auth.disable-again", "DELETE", A + "/a-full")
    R("auth.disable-token", "DELETE", A + "/token")
    R("auth.mounts-internal", "GET", "/v1/sys/internal/ui/mounts", compare="status")


# ------------------------------------------------------------------------------------------
# 15. Big inputs: Coffer's time must stay linear in the input size (1 MB vs 4 MB).
# ------------------------------------------------------------------------------------------

MB = 1 << 20


def big():
    def pair(group, make, method="PUT", path="/v1/kv/big-{g}-{s}", ctype=None, unit=MB):
        for label, size in [("1x", unit), ("4x", 4 * unit)]:
            headers = [("Content-Type", ctype)] if ctype else []
            R("big.%s.%s" % (group, label), method, path.format(g=group, s=label), body=make(size),
              headers=headers, timing=(group, label), timeout=60.0)

    pair("json-string", lambda n: b'{"a":"' + b"x" * n + b'"}')
    pair("json-escapes", lambda n: b'{"a":"' + b"\\u0041" * (n // 6) + b'"}')
    pair("json-many-int-keys", lambda n: b"{" + b",".join(b'"k%d":1' % i for i in range(n // 12)) + b"}")
    pair("json-string-array", lambda n: b'{"a":[' + b",".join([b'"x"'] * (n // 4)) + b"]}")
    pair("json-number-array", lambda n: b'{"a":[' + b",".join([b"1"] * (n // 2)) + b"]}")
    pair("json-deep-array", lambda n: b'{"a":' + b"[" * (n // 2) + b"]" * (n // 2) + b"}")
    pair("json-whitespace", lambda n: b'{"a":' + b" " * n + b'"b"}')
    pair("form", lambda n: b"a=" + b"x" * n, ctype="application/x-www-form-urlencoded")
    pair("form-many", lambda n: b"&".join(b"k%d=v" % i for i in range(n // 10)),
         ctype="application/x-www-form-urlencoded")
    pair("nonutf8", lambda n: b'{"a":"' + b"\xff" * n + b'"}')
    pair("transit", lambda n: b'{"plaintext":"' + b"QUFB" * (n // 4) + b'"}', method="POST",
         path="/v1/transit/encrypt/mm")
    pair("wrap", lambda n: b'{"a":"' + b"x" * n + b'"}', method="POST", path="/v1/sys/wrapping/wrap")
    pair("token-create-meta", lambda n: b'{"meta":{"a":"' + b"x" * n + b'"}}', method="POST",
         path="/v1/auth/token/create")
    pair("policy", lambda n: b'{"policy":"' + b'path \\"kv/a\\" { capabilities = [\\"read\\"] }\\n' * (n // 48)
         + b'"}', path="/v1/sys/policies/acl/big-{s}", unit=64 * 1024)
    R("big.json-string.read", "GET", "/v1/kv/big-json-string-4x", compare="status")
    R("big.over-32mb", "PUT", "/v1/kv/big-over", body=b'{"a":"' + b"x" * (33 * MB) + b'"}', timeout=60.0)


def build_corpus():
    del CORPUS[:]
    setup()
    # The endpoint groups first, so that their listings do not depend on which of the odd
    # writes below each server accepted.
    token()
    kv()
    transit()
    userpass()
    approle()
    policies()
    wrapping()
    methods()
    bodies()
    coercion()
    odd_paths()
    rawhttp()
    health()
    big()
    mounts()
    return list(CORPUS)
