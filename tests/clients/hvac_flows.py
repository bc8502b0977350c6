"""Flows a Python application runs through hvac (the most used Vault client library), against
the server at VAULT_ADDR with the root token in VAULT_TOKEN. Each flow is a function; the run
prints one line per flow and a final 'N passed, N failed' line, and exits non-zero on failure.

The flows: response wrapping (wrap, look up, unwrap with the wrapping token as the client's own
token, the usual way applications unwrap), auth method listing and tuning, token roles (create,
read, list, create a token against a role), leases (list, look up, renew, revoke), KV v2 and
userpass login.
"""
import os
import sys
import traceback
import uuid

import hvac

ADDR = os.environ["VAULT_ADDR"]
ROOT = os.environ["VAULT_TOKEN"]


def client(token=ROOT):
    return hvac.Client(url=ADDR, token=token)


def flow_wrapping():
    c = client()
    wrapped = c.sys.wrap({"password": "s3cret", "n": 1}, ttl=120)
    wrap_token = wrapped["wrap_info"]["token"]
    assert wrapped["wrap_info"]["ttl"] == 120, wrapped["wrap_info"]
    info = c.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrap_token})
    assert info["data"]["creation_path"] == "sys/wrapping/wrap", info
    # The application holds only the wrapping token: it unwraps with it as its own token.
    app = client(wrap_token)
    unwrapped = app.sys.unwrap()
    assert unwrapped["data"] == {"password": "s3cret", "n": 1}, unwrapped
    # Single use: a second unwrap is refused.
    try:
        client(wrap_token).sys.unwrap()
        raise AssertionError("a wrapping token unwrapped twice")
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
        pass
    # Wrapping a response: a token created for the application, delivered wrapped.
    created = c.auth.token.create(policies=["default"], ttl="10m", wrap_ttl="60s")
    inner = client(created["wrap_info"]["token"]).sys.unwrap()
    assert inner["auth"]["client_token"], inner
    assert client(inner["auth"]["client_token"]).is_authenticated()


def flow_auth_listing():
    c = client()
    if "hvac-up/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("userpass", path="hvac-up")
    methods = c.sys.list_auth_methods()
    for path in ("token/", "hvac-up/"):
        m = methods["data"][path]
        assert m["config"]["token_type"] in ("default-service", "default-batch", "service", "batch"), m
        assert m["accessor"], m
    c.sys.tune_auth_method("hvac-up", default_lease_ttl="1h", max_lease_ttl="2h")
    tuned = c.sys.read_auth_method_tuning("hvac-up")
    assert tuned["data"]["default_lease_ttl"] == 3600, tuned
    c.auth.userpass.create_or_update_user("alice", "pw", mount_point="hvac-up", policies=["default"])
    login = client(None).auth.userpass.login("alice", "pw", mount_point="hvac-up")
    assert login["auth"]["policies"] == ["default"], login["auth"]
    assert login["auth"]["lease_duration"] == 3600, login["auth"]


def flow_token_roles():
    c = client()
    c.auth.token.create_or_update_role("hvac-role", allowed_policies=["default", "app"], orphan=True,
                                       renewable=True, token_period="1h")
    role = c.auth.token.read_role("hvac-role")
    assert role["data"]["name"] == "hvac-role", role
    assert role["data"]["orphan"] is True, role
    assert "hvac-role" in c.auth.token.list_roles()["data"]["keys"]
    t = c.auth.token.create(role_name="hvac-role", policies=["app"])
    assert t["auth"]["orphan"] is True, t["auth"]
    assert t["auth"]["policies"] == ["app", "default"], t["auth"]["policies"]
    look = c.auth.token.lookup(t["auth"]["client_token"])
    assert look["data"]["role"] == "hvac-role", look["data"]
    assert look["data"]["path"] == "auth/token/create/hvac-role", look["data"]
    assert look["data"]["creation_ttl"] == 3600 and look["data"]["renewable"] is True, look["data"]
    c.auth.token.delete_role("hvac-role")
    try:
        keys = c.auth.token.list_roles()["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        keys = []  # an empty list is a 404, as in OpenBao
    assert "hvac-role" not in keys, keys


def flow_leases():
    c = client()
    for _ in range(2):
        c.auth.token.create(policies=["default"], ttl="1h")
    listed = c.sys.list_leases("auth/token/create/")
    keys = listed["data"]["keys"]
    assert len(keys) >= 2, listed
    # Other flows' tokens have leases here too: take one of the renewable ones with a TTL.
    looked = [c.sys.read_lease("auth/token/create/" + k) for k in keys if not k.endswith("/")]
    looked = [x for x in looked if x["data"]["renewable"] and x["data"]["ttl"] > 3000]
    assert len(looked) >= 2, looked
    lease_id = looked[0]["data"]["id"]
    assert lease_id.startswith("auth/token/create/") and looked[0]["data"]["expire_time"], looked[0]
    # Token leases are renewed through the token store, never through sys/leases.
    try:
        c.sys.renew_lease(lease_id, increment=7200)
        raise AssertionError("a token lease was renewed through sys/leases/renew")
    except hvac.exceptions.InvalidRequest as e:
        assert "tokens cannot be renewed through this endpoint" in str(e), e
    c.sys.revoke_lease(lease_id)
    try:
        c.sys.read_lease(lease_id)
        raise AssertionError("a revoked lease can still be read")
    except hvac.exceptions.InvalidRequest:
        pass


def flow_kv_v2():
    c = client()
    path = f"hvac/app-{uuid.uuid4().hex[:8]}"
    c.secrets.kv.v2.create_or_update_secret(path=path, secret={"user": "u", "pw": "p"})
    c.secrets.kv.v2.create_or_update_secret(path=path, secret={"user": "u", "pw": "p2"}, cas=1)
    read = c.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert read["data"]["data"]["pw"] == "p2" and read["data"]["metadata"]["version"] == 2, read
    meta = c.secrets.kv.v2.read_secret_metadata(path=path)
    assert meta["data"]["current_version"] == 2, meta
    assert path.split("/")[1] in c.secrets.kv.v2.list_secrets(path="hvac")["data"]["keys"]


def main():
    flows = [(n, f) for n, f in sorted(globals().items()) if n.startswith("flow_")]
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
    print(f"hvac: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
