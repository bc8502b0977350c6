"""Flows a Python application runs through hvac (the most used Vault client library), against
the server at VAULT_ADDR with the root token in VAULT_TOKEN. Each flow is a function; the run
prints one line per flow and a final 'N passed, N failed' line, and exits non-zero on failure.

The flows: response wrapping (wrap, look up, unwrap with the wrapping token as the client's own
token, the usual way applications unwrap), auth method listing and tuning, token roles (create,
read, list, create a token against a role), leases (list, look up, renew, revoke), KV v2 and
userpass login; identity: entities and aliases, internal/external groups and group aliases,
entity merges, a templated policy that follows the logged-in entity, and identity tokens (named
keys, roles, signed tokens, introspection, rotation, the public key set); PKI: a root, URLs, a
role, issuing, reading, listing and revoking a certificate, the CA and CRL in PEM, CRL settings,
issuers, and deleting the root; SSH: a CA, roles, signing (the certificates read by ssh-keygen,
signed by the role's issuer), a second issuer, and deleting the CA.
"""
import base64
import json
import os
import sys
import time
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


def userpass_accessor(c, path):
    if f"{path}/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("userpass", path=path)
    return c.sys.list_auth_methods()["data"][f"{path}/"]["accessor"]


def flow_identity_entities_and_aliases():
    c = client()
    ident = c.secrets.identity
    acc = userpass_accessor(c, "hvac-id")
    name = f"ent-{uuid.uuid4().hex[:8]}"
    e = ident.create_or_update_entity(name=name, metadata={"team": "red"}, policies=["p1"])
    eid = e["data"]["id"]
    assert ident.read_entity_by_name(name)["data"]["id"] == eid
    ident.update_entity(entity_id=eid, metadata={"team": "blue"}, policies=["p1", "p2"])
    got = ident.read_entity(entity_id=eid)["data"]
    assert got["metadata"] == {"team": "blue"} and got["policies"] == ["p1", "p2"], got
    alias = ident.create_or_update_entity_alias(name=f"{name}-login", canonical_id=eid, mount_accessor=acc)
    aid = alias["data"]["id"]
    c.adapter.post(f"/v1/identity/entity-alias/id/{aid}", json={"custom_metadata": {"site": "ber"}})
    read = ident.read_entity_alias(alias_id=aid)["data"]
    assert read["custom_metadata"] == {"site": "ber"} and read["mount_path"] == "auth/hvac-id/", read
    # A second alias of the same entity on the same mount is refused.
    try:
        ident.create_or_update_entity_alias(name=f"{name}-other", canonical_id=eid, mount_accessor=acc)
        raise AssertionError("a second alias on one mount was accepted")
    except hvac.exceptions.InvalidRequest:
        pass
    found = ident.lookup_entity(alias_name=f"{name}-login", alias_mount_accessor=acc)
    assert found["data"]["id"] == eid, found
    assert eid in ident.list_entities(method="LIST")["data"]["keys"]
    assert eid in ident.list_entities(method="GET")["data"]["keys"]
    ident.delete_entity(entity_id=eid)
    try:
        ident.read_entity_alias(alias_id=aid)
        raise AssertionError("the alias outlived its entity")
    except hvac.exceptions.InvalidPath:
        pass


def flow_identity_groups_and_group_aliases():
    c = client()
    ident = c.secrets.identity
    acc = userpass_accessor(c, "hvac-id")
    tag = uuid.uuid4().hex[:8]
    eid = ident.create_or_update_entity(name=f"member-{tag}")["data"]["id"]
    inner = ident.create_or_update_group(name=f"inner-{tag}", policies=["inner-p"], member_entity_ids=[eid])
    inner_id = inner["data"]["id"]
    outer = ident.create_or_update_group(name=f"outer-{tag}", policies=["outer-p"], member_group_ids=[inner_id])
    outer_id = outer["data"]["id"]
    ent = ident.read_entity(entity_id=eid)["data"]
    assert ent["direct_group_ids"] == [inner_id] and ent["inherited_group_ids"] == [outer_id], ent
    # A cycle is refused.
    try:
        ident.create_or_update_group(name=f"inner-{tag}", member_group_ids=[outer_id], member_entity_ids=[eid])
        raise AssertionError("a group cycle was accepted")
    except hvac.exceptions.InvalidRequest:
        pass
    ext = ident.create_or_update_group(name=f"ext-{tag}", group_type="external", policies=["ext-p"])
    ext_id = ext["data"]["id"]
    ga = ident.create_or_update_group_alias(name=f"ldap-{tag}", mount_accessor=acc, canonical_id=ext_id)
    ga_id = ga["data"]["id"]
    assert ident.read_group_alias(alias_id=ga_id)["data"]["canonical_id"] == ext_id
    assert ga_id in ident.list_group_aliases()["data"]["keys"]
    looked = ident.lookup_group(alias_name=f"ldap-{tag}", alias_mount_accessor=acc)
    assert looked["data"]["id"] == ext_id and looked["data"]["type"] == "external", looked
    assert ident.read_group_by_name(name=f"ext-{tag}")["data"]["alias"]["id"] == ga_id
    for bad in (
        lambda: ident.create_or_update_group_alias(name=f"x-{tag}", mount_accessor=acc, canonical_id=inner_id),
        lambda: ident.create_or_update_group(name=f"ext-{tag}", group_type="internal"),
    ):
        try:
            bad()
            raise AssertionError("accepted")
        except hvac.exceptions.InvalidRequest:
            pass
    ident.delete_group_by_name(name=f"ext-{tag}")
    try:
        ident.read_group_alias(alias_id=ga_id)
        raise AssertionError("the group alias outlived its group")
    except hvac.exceptions.InvalidPath:
        pass


def flow_identity_merge():
    c = client()
    ident = c.secrets.identity
    acc = userpass_accessor(c, "hvac-id")
    tag = uuid.uuid4().hex[:8]
    to = ident.create_or_update_entity(name=f"to-{tag}")["data"]["id"]
    frm = ident.create_or_update_entity(name=f"from-{tag}")["data"]["id"]
    a_to = ident.create_or_update_entity_alias(name=f"a-{tag}", canonical_id=to, mount_accessor=acc)["data"]["id"]
    a_from = ident.create_or_update_entity_alias(name=f"b-{tag}", canonical_id=frm, mount_accessor=acc)["data"]["id"]
    g = ident.create_or_update_group(name=f"mg-{tag}", member_entity_ids=[frm])["data"]["id"]
    # Both have an alias on one mount: refused until the alias to keep is named; nothing moves.
    try:
        ident.merge_entities(from_entity_ids=[frm], to_entity_id=to)
        raise AssertionError("a clashing merge was accepted")
    except hvac.exceptions.InvalidRequest:
        pass
    assert ident.read_entity(entity_id=frm)["data"]["aliases"][0]["id"] == a_from
    ident.merge_entities(from_entity_ids=[frm], to_entity_id=to, conflicting_alias_ids_to_keep=[a_from])
    merged = ident.read_entity(entity_id=to)["data"]
    assert frm in merged["merged_entity_ids"], merged
    assert a_from in [a["id"] for a in merged["aliases"]], merged
    assert g in merged["group_ids"], merged
    try:
        ident.read_entity(entity_id=frm)
        raise AssertionError("the merged entity still exists")
    except hvac.exceptions.InvalidPath:
        pass
    del a_to


def flow_identity_templated_policy():
    c = client()
    ident = c.secrets.identity
    acc = userpass_accessor(c, "hvac-tpl")
    tag = uuid.uuid4().hex[:8]
    if "tpl-kv/" not in c.sys.list_mounted_secrets_engines()["data"]:
        c.sys.enable_secrets_engine("kv", path="tpl-kv", options={"version": "2"})
    c.sys.create_or_update_policy(
        name=f"tpl-{tag}",
        policy='path "tpl-kv/data/{{identity.entity.name}}/*" { capabilities = ["create", "update", "read"] }\n'
        'path "tpl-kv/data/team/{{identity.entity.metadata.team}}" { capabilities = ["read"] }\n',
    )
    user = f"u-{tag}"
    c.auth.userpass.create_or_update_user(username=user, password="pw", policies=[f"tpl-{tag}"], mount_point="hvac-tpl")
    eid = ident.create_or_update_entity(name=f"n-{tag}", metadata={"team": "red"})["data"]["id"]
    ident.create_or_update_entity_alias(name=user, canonical_id=eid, mount_accessor=acc)
    c.secrets.kv.v2.create_or_update_secret(path="team/red", secret={"k": "v"}, mount_point="tpl-kv")
    u = client(token=None)
    u.auth.userpass.login(username=user, password="pw", mount_point="hvac-tpl")
    assert u.auth.token.lookup_self()["data"]["entity_id"] == eid
    u.secrets.kv.v2.create_or_update_secret(path=f"n-{tag}/app", secret={"a": "1"}, mount_point="tpl-kv")
    assert u.secrets.kv.v2.read_secret_version(path="team/red", mount_point="tpl-kv", raise_on_deleted_version=True)
    for denied in (f"other-{tag}/app",):
        try:
            u.secrets.kv.v2.create_or_update_secret(path=denied, secret={"a": "1"}, mount_point="tpl-kv")
            raise AssertionError(f"{denied} was writable")
        except hvac.exceptions.Forbidden:
            pass
    # The entity's metadata changes: the same token follows it at once.
    ident.update_entity(entity_id=eid, metadata={"team": "blue"})
    try:
        u.secrets.kv.v2.read_secret_version(path="team/red", mount_point="tpl-kv", raise_on_deleted_version=True)
        raise AssertionError("the old metadata still granted access")
    except hvac.exceptions.Forbidden:
        pass
    # The default policy lets the token read its own entity, and no other.
    assert u.secrets.identity.read_entity(entity_id=eid)["data"]["name"] == f"n-{tag}"


def flow_pki():
    c = client()
    mount = "pki-" + uuid.uuid4().hex[:8]
    c.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": "87600h"})
    root = c.secrets.pki.generate_root(
        type="internal", common_name="hvac root", extra_params={"ttl": "8760h", "key_type": "ec"}, mount_point=mount
    )["data"]
    assert "BEGIN CERTIFICATE" in root["certificate"] and "private_key" not in root, root
    c.secrets.pki.set_urls({"issuing_certificates": [f"{ADDR}/v1/{mount}/ca"]}, mount_point=mount)
    urls = c.secrets.pki.read_urls(mount_point=mount)["data"]
    assert urls["issuing_certificates"] == [f"{ADDR}/v1/{mount}/ca"], urls
    c.secrets.pki.create_or_update_role(
        "svc", {"allowed_domains": ["example.com"], "allow_subdomains": True, "max_ttl": "24h", "key_type": "ec"},
        mount_point=mount,
    )
    role = c.secrets.pki.read_role("svc", mount_point=mount)["data"]
    assert role["allowed_domains"] == ["example.com"] and role["allow_subdomains"] is True, role
    assert "svc" in c.secrets.pki.list_roles(mount_point=mount)["data"]["keys"]
    cert = c.secrets.pki.generate_certificate("svc", "db.example.com", extra_params={"ttl": "1h"}, mount_point=mount)["data"]
    serial = cert["serial_number"]
    assert "BEGIN CERTIFICATE" in cert["certificate"] and cert["private_key_type"] == "ec", cert
    try:
        c.secrets.pki.generate_certificate("svc", "db.evil.org", mount_point=mount)
        raise AssertionError("a name outside the role was certified")
    except hvac.exceptions.InvalidRequest:
        pass
    read = c.secrets.pki.read_certificate(serial, mount_point=mount)["data"]
    assert read["certificate"].strip() == cert["certificate"].strip() and read["revocation_time"] == 0, read
    assert serial in c.secrets.pki.list_certificates(mount_point=mount)["data"]["keys"]
    ca_pem = c.secrets.pki.read_ca_certificate(mount_point=mount)
    assert ca_pem.strip() == root["certificate"].strip(), ca_pem
    assert "BEGIN CERTIFICATE" in c.secrets.pki.read_ca_certificate_chain(mount_point=mount)
    revoked = c.secrets.pki.revoke_certificate(serial, mount_point=mount)["data"]
    assert revoked["revocation_time"] > 0, revoked
    assert c.secrets.pki.read_certificate(serial, mount_point=mount)["data"]["revocation_time"] > 0
    crl = c.secrets.pki.read_crl(mount_point=mount)
    assert "BEGIN X509 CRL" in crl, crl
    c.secrets.pki.set_crl_configuration(expiry="48h", mount_point=mount)
    assert c.secrets.pki.read_crl_configuration(mount_point=mount)["data"]["expiry"] == "48h"
    c.secrets.pki.rotate_crl(mount_point=mount)
    # A tidy (202, in the background) and its status; the certificate is not expired, so it stays.
    c.secrets.pki.tidy(extra_params={"tidy_cert_store": True, "tidy_revoked_certs": True}, mount_point=mount)
    for _ in range(50):
        status = c.adapter.get(f"/v1/{mount}/tidy-status")["data"]
        if status["state"] == "Finished":
            break
        time.sleep(0.1)
    assert status["state"] == "Finished" and status["cert_store_deleted_count"] == 0, status
    assert serial in c.secrets.pki.list_certificates(mount_point=mount)["data"]["keys"]
    issuers = c.secrets.pki.list_issuers(mount_point=mount)["data"]
    assert issuers["keys"] == [root["issuer_id"]], issuers
    c.secrets.pki.update_issuer(root["issuer_id"], extra_params={"issuer_name": "renamed"}, mount_point=mount)
    assert c.secrets.pki.read_issuer("renamed", mount_point=mount)["data"]["issuer_id"] == root["issuer_id"]
    c.secrets.pki.delete_root(mount_point=mount)
    try:
        c.secrets.pki.list_issuers(mount_point=mount)
        raise AssertionError("issuers are left after deleting the root")
    except hvac.exceptions.InvalidPath:
        pass
    c.sys.disable_secrets_engine(mount)


def flow_ssh():
    import subprocess
    import tempfile

    c = client()
    mount = "ssh-" + uuid.uuid4().hex[:8]
    c.sys.enable_secrets_engine("ssh", path=mount)
    ca = c.secrets.ssh.submit_ca_information(key_type="ssh-ed25519", mount_point=mount)["data"]
    assert ca["public_key"].startswith("ssh-ed25519 "), ca
    assert c.secrets.ssh.read_public_key(mount_point=mount)["data"]["public_key"] == ca["public_key"]
    c.secrets.ssh.create_role(
        name="users", key_type="ca", allow_user_certificates=True, allowed_users="alice,bob",
        default_extensions={"permit-pty": ""}, allowed_extensions="permit-pty", ttl="30m", mount_point=mount,
    )
    role = c.secrets.ssh.read_role(name="users", mount_point=mount)["data"]
    assert role["allowed_users"] == "alice,bob" and role["issuer_ref"] == "default", role
    assert "users" in c.secrets.ssh.list_roles(mount_point=mount)["data"]["keys"]
    # A second issuer, and a role that signs with it (hvac has no call for these paths).
    second = c.adapter.post(f"/v1/{mount}/issuers/import/second", json={"key_type": "ssh-ed25519"})["data"]
    c.adapter.post(
        f"/v1/{mount}/roles/second",
        json={"key_type": "ca", "allow_user_certificates": True, "allowed_users": "alice", "issuer_ref": "second"},
    )
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "id")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        pub = open(key + ".pub").read()
        for role_name, signer in (("users", ca), ("second", second)):
            signed = c.secrets.ssh.sign_ssh_key(
                name=role_name, public_key=pub, valid_principals="alice", mount_point=mount
            )["data"]
            assert signed["issuer_id"] == signer["issuer_id"], signed
            with open(key + "-cert.pub", "w") as f:
                f.write(signed["signed_key"])
            text = subprocess.run(["ssh-keygen", "-L", "-f", key + "-cert.pub"], capture_output=True, text=True).stdout
            with open(os.path.join(d, "ca.pub"), "w") as f:
                f.write(signer["public_key"])
            fp = subprocess.run(
                ["ssh-keygen", "-l", "-f", os.path.join(d, "ca.pub")], capture_output=True, text=True
            ).stdout.split()[1]
            assert "user certificate" in text and "alice" in text and fp in text, text
        try:
            c.secrets.ssh.sign_ssh_key(name="users", public_key=pub, valid_principals="mallory", mount_point=mount)
            raise AssertionError("a principal outside the role was signed")
        except hvac.exceptions.InvalidRequest:
            pass
    c.secrets.ssh.delete_role(name="users", mount_point=mount)
    c.secrets.ssh.delete_ca_information(mount_point=mount)
    try:
        c.secrets.ssh.read_public_key(mount_point=mount)
        raise AssertionError("the CA is left after deleting it")
    except hvac.exceptions.InvalidRequest:
        pass
    c.sys.disable_secrets_engine(mount)


def flow_identity_tokens():
    c = client()
    tag = uuid.uuid4().hex[:8]
    ident = c.secrets.identity
    ident.create_named_key(f"k-{tag}", algorithm="ES256", allowed_client_ids=["*"], rotation_period="4h")
    key = ident.read_named_key(f"k-{tag}")["data"]
    assert key["algorithm"] == "ES256" and key["rotation_period"] == 14400, key
    assert f"k-{tag}" in ident.list_named_keys()["data"]["keys"]
    ident.create_or_update_role(f"r-{tag}", key=f"k-{tag}", ttl="1h", template='{"n": {{identity.entity.name}}}')
    role = ident.read_role(f"r-{tag}")["data"]
    assert role["key"] == f"k-{tag}" and role["ttl"] == 3600, role
    userpass_accessor(c, "hvac-oidc")
    c.sys.create_or_update_policy(f"oidc-{tag}", 'path "identity/oidc/token/*" { capabilities = ["read"] }')
    c.auth.userpass.create_or_update_user(username=f"o-{tag}", password="pw", policies=[f"oidc-{tag}"],
                                          mount_point="hvac-oidc")
    u = client(None)
    u.auth.userpass.login(username=f"o-{tag}", password="pw", mount_point="hvac-oidc")
    signed = u.secrets.identity.generate_signed_id_token(f"r-{tag}")["data"]
    assert signed["client_id"] == role["client_id"], signed
    assert ident.introspect_signed_id_token(signed["token"])["active"] is True
    assert ident.introspect_signed_id_token(signed["token"], client_id="other")["active"] is False
    kids = [k["kid"] for k in ident.read_active_public_keys()["keys"]]
    # hvac's rotate_named_key posts to identity/oidc/key/:name (an update of verification_ttl),
    # not to …/rotate: the rotation itself goes through the adapter.
    ident.rotate_named_key(f"k-{tag}", verification_ttl="1h")
    assert ident.read_named_key(f"k-{tag}")["data"]["verification_ttl"] == 3600
    c.adapter.post(f"/v1/identity/oidc/key/k-{tag}/rotate", json={"verification_ttl": "1h"})
    after = [k["kid"] for k in ident.read_active_public_keys()["keys"]]
    signed_kid = json.loads(base64.urlsafe_b64decode(signed["token"].split(".")[0] + "=="))["kid"]
    assert signed_kid in kids and signed_kid in after, "the rotated-out key left the key set"
    assert set(after) - set(kids), "rotation published no new key"
    assert ident.introspect_signed_id_token(signed["token"])["active"] is True
    assert ident.read_well_known_configurations()["issuer"].endswith("/v1/identity/oidc")
    try:
        ident.delete_named_key(f"k-{tag}")
        raise AssertionError("a key in use was deleted")
    except hvac.exceptions.InvalidRequest:
        pass
    ident.delete_role(f"r-{tag}")
    ident.delete_named_key(f"k-{tag}")


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
