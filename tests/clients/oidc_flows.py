"""Identity tokens and the OIDC provider, checked by independent libraries, against the server
at VAULT_ADDR with the root token in VAULT_TOKEN. Each flow is a function; the run prints one
line per flow and a final 'oidc: N passed, N failed' line, and exits non-zero on failure.

- PyJWT verifies identity tokens (every signing algorithm) against the issuer's published
  `.well-known/keys`, before and after the key is rotated; introspection agrees.
- Authlib, as the relying party, runs the provider's authorization-code flow with PKCE (S256
  and plain): discovery, the authorization request (the step a browser does: the request the
  UI sends with the user's token), the code exchange with client_secret_basic,
  client_secret_post and a public client, ID token validation (issuer, audience, nonce,
  at_hash), and userinfo.
"""
import base64
import warnings
import hashlib
import json
import os
import sys
import traceback
import uuid
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import requests
warnings.filterwarnings("ignore", message=".*authlib.jose.*deprecated")
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey
from authlib.jose import jwt as authlib_jwt
from authlib.oidc.core import CodeIDToken

ADDR = os.environ["VAULT_ADDR"].rstrip("/")
ROOT = os.environ["VAULT_TOKEN"]
TAG = uuid.uuid4().hex[:8]
REDIRECT = "http://127.0.0.1:9/callback"


def api(method, path, token=ROOT, expect=(200, 204), **kw):
    r = requests.request(method, f"{ADDR}/v1/{path}", headers={"X-Vault-Token": token} if token else {}, **kw)
    assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.text.strip() else None


_user = {}


def user():
    """A userpass user whose token has an entity and may ask for identity tokens."""
    if _user:
        return _user
    mount = f"oidc-up-{TAG}"
    api("POST", f"sys/auth/{mount}", json={"type": "userpass"})
    api("PUT", f"sys/policy/oidc-{TAG}", json={"policy": 'path "identity/oidc/token/*" { capabilities = ["read"] }\n'
                                                       'path "identity/oidc/introspect" { capabilities = ["update"] }\n'})
    api("POST", f"auth/{mount}/users/alice", json={"password": "pw", "policies": f"default,oidc-{TAG}"})
    auth = api("POST", f"auth/{mount}/login/alice", token=None, json={"password": "pw"})["auth"]
    _user.update(token=auth["client_token"], entity_id=auth["entity_id"])
    # The issuer is the address this run reaches the server at.
    api("POST", "identity/oidc/config", json={"issuer": ADDR})
    return _user


def issue(role):
    return api("GET", f"identity/oidc/token/{role}", token=user()["token"])["data"]


def verify_with_pyjwt(token, audience):
    """Verifies the way a service would: keys from the issuer's discovery document."""
    disco = requests.get(f"{ADDR}/v1/identity/oidc/.well-known/openid-configuration").json()
    assert disco["issuer"] == f"{ADDR}/v1/identity/oidc", disco
    keys = jwt.PyJWKClient(disco["jwks_uri"], cache_jwk_set=False)
    key = keys.get_signing_key_from_jwt(token)
    alg = jwt.get_unverified_header(token)["alg"]
    return jwt.decode(token, key.key, algorithms=[alg], audience=audience, issuer=disco["issuer"])


def introspect(token, client_id=None):
    body = {"token": token}
    if client_id:
        body["client_id"] = client_id
    return api("POST", "identity/oidc/introspect", token=user()["token"], json=body)


def flow_identity_tokens_of_every_algorithm_verify_with_pyjwt():
    u = user()
    for alg in ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"]:
        key = f"k-{alg.lower()}-{TAG}"
        api("POST", f"identity/oidc/key/{key}", json={"algorithm": alg, "allowed_client_ids": ["*"]})
        role = f"r-{alg.lower()}-{TAG}"
        api("POST", f"identity/oidc/role/{role}", json={
            "key": key, "ttl": "1h",
            "template": '{"who": {{identity.entity.name}}, "meta": {{identity.entity.metadata}}}'})
        out = issue(role)
        claims = verify_with_pyjwt(out["token"], out["client_id"])
        assert claims["sub"] == u["entity_id"], claims
        assert claims["aud"] == out["client_id"] and claims["exp"] - claims["iat"] == 3600, claims
        assert isinstance(claims["who"], str) and claims["meta"] == {}, claims
        assert introspect(out["token"]) == {"active": True}


def flow_rotation_publishes_the_new_key_and_keeps_the_old_one_verifying():
    key = f"rot-{TAG}"
    api("POST", f"identity/oidc/key/{key}", json={"algorithm": "ES256", "allowed_client_ids": ["*"]})
    role = f"rot-{TAG}"
    api("POST", f"identity/oidc/role/{role}", json={"key": key, "ttl": "10m"})
    before = issue(role)
    api("POST", f"identity/oidc/key/{key}/rotate", json={"verification_ttl": "1h"})
    after = issue(role)
    kid_before = jwt.get_unverified_header(before["token"])["kid"]
    kid_after = jwt.get_unverified_header(after["token"])["kid"]
    assert kid_before != kid_after, "rotation did not change the signing key"
    for t in (before, after):
        verify_with_pyjwt(t["token"], t["client_id"])
        assert introspect(t["token"]) == {"active": True}
    kids = {k["kid"] for k in requests.get(f"{ADDR}/v1/identity/oidc/.well-known/keys").json()["keys"]}
    assert {kid_before, kid_after} <= kids, kids


def flow_a_tampered_or_foreign_token_is_refused():
    role = f"r-es256-{TAG}"
    out = issue(role)
    head, body, sig = out["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "someone-else"
    forged = head + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + "." + sig
    try:
        verify_with_pyjwt(forged, out["client_id"])
        raise AssertionError("PyJWT accepted a forged token")
    except jwt.InvalidSignatureError:
        pass
    assert introspect(forged)["active"] is False
    assert introspect(out["token"], client_id="not-the-audience")["active"] is False
    assert introspect("not-a-jwt")["active"] is False


_provider = {}


def provider():
    """A provider with a scope, an assignment for the user, and three clients."""
    if _provider:
        return _provider
    u = user()
    key = f"pk-{TAG}"
    api("POST", f"identity/oidc/key/{key}", json={"algorithm": "ES256", "allowed_client_ids": ["*"]})
    api("POST", f"identity/oidc/scope/user-{TAG}",
        json={"template": '{"username": {{identity.entity.name}}}', "description": "the user's name"})
    api("POST", f"identity/oidc/assignment/a-{TAG}", json={"entity_ids": [u["entity_id"]]})
    clients = {}
    for name, ctype in [("conf", "confidential"), ("pub", "public")]:
        api("POST", f"identity/oidc/client/{name}-{TAG}", json={
            "redirect_uris": [REDIRECT], "assignments": [f"a-{TAG}"], "key": key,
            "id_token_ttl": "30m", "access_token_ttl": "1h", "client_type": ctype})
        clients[name] = api("GET", f"identity/oidc/client/{name}-{TAG}")["data"]
    api("POST", f"identity/oidc/provider/p-{TAG}",
        json={"issuer": ADDR, "allowed_client_ids": ["*"], "scopes_supported": [f"user-{TAG}"]})
    disco = requests.get(f"{ADDR}/v1/identity/oidc/provider/p-{TAG}/.well-known/openid-configuration").json()
    _provider.update(clients=clients, disco=disco, scope=f"openid user-{TAG}")
    return _provider


def authorize(auth_url):
    """The browser step: the UI sends the authorization request with the user's token."""
    p = provider()
    params = {k: v[0] for k, v in parse_qs(urlparse(auth_url).query).items()}
    path = f"identity/oidc/provider/p-{TAG}/authorize"
    answer = api("GET", path + "?" + urlencode(params), token=user()["token"])
    assert answer["state"] == params["state"], answer
    assert p["disco"]["authorization_endpoint"].endswith(f"/identity/oidc/provider/p-{TAG}/authorize")
    return f"{REDIRECT}?" + urlencode({"code": answer["code"], "state": answer["state"]})


def code_flow(client, auth_method, challenge_method):
    p = provider()
    d = p["disco"]
    s = OAuth2Session(client["client_id"], client.get("client_secret"), scope=p["scope"], redirect_uri=REDIRECT,
                      code_challenge_method=challenge_method, token_endpoint_auth_method=auth_method)
    verifier = generate_token(64)
    nonce = generate_token(16)
    url, state = s.create_authorization_url(d["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    token = s.fetch_token(d["token_endpoint"], authorization_response=authorize(url), code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600, token
    jwks = JsonWebKey.import_key_set(requests.get(d["jwks_uri"]).json())
    claims = authlib_jwt.decode(token["id_token"], jwks, claims_cls=CodeIDToken,
                                claims_options={"iss": {"essential": True, "value": d["issuer"]}},
                                claims_params={"nonce": nonce, "client_id": client["client_id"],
                                               "access_token": token["access_token"]})
    claims.validate()
    assert claims["sub"] == user()["entity_id"], claims
    assert claims["exp"] - claims["iat"] == 1800, claims
    assert isinstance(claims["username"], str), claims
    info = s.get(d["userinfo_endpoint"]).json()
    assert info["sub"] == user()["entity_id"] and info["username"] == claims["username"], info


def flow_authlib_code_flow_with_pkce_s256_and_client_secret_basic():
    code_flow(provider()["clients"]["conf"], "client_secret_basic", "S256")


def flow_authlib_code_flow_with_client_secret_post():
    code_flow(provider()["clients"]["conf"], "client_secret_post", "S256")


def flow_authlib_code_flow_for_a_public_client_with_pkce():
    code_flow(provider()["clients"]["pub"], "none", "S256")


def flow_a_code_is_spent_by_its_first_exchange_and_a_wrong_verifier_fails():
    p = provider()
    d = p["disco"]
    c = p["clients"]["conf"]
    s = OAuth2Session(c["client_id"], c["client_secret"], scope=p["scope"], redirect_uri=REDIRECT,
                      code_challenge_method="S256")
    verifier = generate_token(64)
    url, _ = s.create_authorization_url(d["authorization_endpoint"], code_verifier=verifier)
    callback = authorize(url)
    code = parse_qs(urlparse(callback).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "x" * 50}
    r = requests.post(d["token_endpoint"], data=form, auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    form["code_verifier"] = verifier
    r = requests.post(d["token_endpoint"], data=form, auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = requests.post(d["token_endpoint"], data=form, auth=(c["client_id"], "wrong-secret"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    r = requests.get(d["userinfo_endpoint"], headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text
    # Sanity: hashlib agrees with the S256 challenge Authlib sent.
    ch = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert parse_qs(urlparse(url).query)["code_challenge"][0] == ch


def main():
    flows = [(n, f) for n, f in globals().items() if n.startswith("flow_")]
    passed = failed = 0
    for name, f in flows:
        try:
            f()
            passed += 1
            print(f"ok   {name}")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"oidc: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
