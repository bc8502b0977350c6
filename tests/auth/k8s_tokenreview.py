"""The one stand-in for a Kubernetes API server in Coffer's tests (no cluster runs here).

It serves, over HTTPS, the two calls the Kubernetes auth method makes, answering as the
Kubernetes API documents them:

  POST /apis/authentication.k8s.io/v1/tokenreviews   (201 with a TokenReview)
  GET  /api/v1/namespaces/NAME                       (200 with a Namespace, 404 with a Status)

A review's caller must present a bearer token listed in --reviewer (401 Unauthorized
otherwise, 403 Forbidden for one listed with --forbidden-reviewer). The reviewed token is
authenticated when its signature verifies with the service-account public key (--sa-key),
it has not expired, its service account is not listed in --deleted, and — when the review
names audiences — its `aud` shares one with them (the answer's `status.audiences` is that
intersection; legacy secret tokens without `aud` have the API server's own audience,
--api-audience). Otherwise `status.authenticated` is false with an `error`, as the API server
answers.

  k8s_tokenreview.py --cert C --key K --sa-key PUB.pem --reviewer TOKEN
                     [--forbidden-reviewer TOKEN] [--deleted ns/name] [--namespace ns=k=v,k2=v2]
Prints "listening on PORT" once ready.
"""
import argparse
import json
import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

p = argparse.ArgumentParser()
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--sa-key", required=True)
p.add_argument("--reviewer", action="append", default=[])
p.add_argument("--forbidden-reviewer", action="append", default=[])
p.add_argument("--deleted", action="append", default=[])
p.add_argument("--namespace", action="append", default=[])
p.add_argument("--api-audience", default="https://kubernetes.default.svc")
args = p.parse_args()
SA_KEY = open(args.sa_key).read()
NAMESPACES = {}
for spec in args.namespace:
    name, _, labels = spec.partition("=")
    NAMESPACES[name] = dict(kv.split("=", 1) for kv in labels.split(",") if kv)


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def review(spec):
    token = spec.get("token", "")
    wanted = spec.get("audiences") or []
    try:
        claims = jwt.decode(token, SA_KEY, algorithms=["RS256"], options={"verify_aud": False})
    except jwt.ExpiredSignatureError:
        return {"user": {}, "error": "[invalid bearer token, service account token has expired]"}
    except jwt.PyJWTError:
        return {"user": {}, "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]"}
    if "kubernetes.io" in claims:
        k = claims["kubernetes.io"]
        ns, name, uid = k["namespace"], k["serviceaccount"]["name"], k["serviceaccount"]["uid"]
    else:
        ns = claims["kubernetes.io/serviceaccount/namespace"]
        name = claims["kubernetes.io/serviceaccount/service-account.name"]
        uid = claims["kubernetes.io/serviceaccount/service-account.uid"]
    if f"{ns}/{name}" in args.deleted:
        return {"user": {}, "error": f'[invalid bearer token, serviceaccounts "{name}" not found]'}
    aud = claims.get("aud", [args.api_audience])
    aud = [aud] if isinstance(aud, str) else aud
    check = wanted or [args.api_audience]
    both = [a for a in check if a in aud]
    if not both:
        return {"user": {}, "error": f"[invalid bearer token, token audiences {json.dumps(aud)} is invalid for the target audiences {json.dumps(check)}]"}
    return {
        "authenticated": True,
        "user": {
            "username": f"system:serviceaccount:{ns}:{name}",
            "uid": uid,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        },
        "audiences": both,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if os.environ.get("K8S_STANDIN_LOG"):
            sys.stderr.write("k8s stand-in: " + (fmt % a) + "\n")

    def send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def caller(self):
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token in args.forbidden_reviewer:
            return "forbidden"
        return "ok" if token in args.reviewer else "unauthorized"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
            return self.send(404, status_obj(404, "NotFound", "the server could not find the requested resource"))
        who = self.caller()
        if who == "unauthorized":
            return self.send(401, status_obj(401, "Unauthorized", "Unauthorized"))
        if who == "forbidden":
            return self.send(403, status_obj(403, "Forbidden",
                'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:default:nobody" '
                'cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'))
        # The URL names the kind; a body may leave kind and apiVersion out (client-go's does),
        # but may not name another.
        if body.get("kind", "TokenReview") != "TokenReview" or body.get("apiVersion", "authentication.k8s.io/v1") != "authentication.k8s.io/v1":
            return self.send(400, status_obj(400, "BadRequest", "not an authentication.k8s.io/v1 TokenReview"))
        spec = body.get("spec", {})
        if os.environ.get("K8S_STANDIN_LOG"):
            sys.stderr.write(f"k8s stand-in: review body keys {sorted(body)} spec keys {sorted(spec)}\n")
        out = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"creationTimestamp": None}, "spec": spec, "status": review(spec)}
        self.send(201, out)

    def do_GET(self):
        prefix = "/api/v1/namespaces/"
        if not self.path.startswith(prefix):
            return self.send(404, status_obj(404, "NotFound", "the server could not find the requested resource"))
        if self.caller() != "ok":
            return self.send(401, status_obj(401, "Unauthorized", "Unauthorized"))
        name = self.path[len(prefix):]
        if name not in NAMESPACES:
            return self.send(404, status_obj(404, "NotFound", f'namespaces "{name}" not found'))
        self.send(200, {"kind": "Namespace", "apiVersion": "v1",
                        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **NAMESPACES[name]}},
                        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(args.cert, args.key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
