"""The ldap auth method through hvac, as a Python tool configures it and a person logs in.
VAULT_ADDR/VAULT_TOKEN: the server and its root token; LDAP_URL: a slapd holding
uid=alice (password alicepw) in cn=devs, nested in cn=engineering, under dc=example,dc=com
(crates/coffer/tests/auth_ldap.rs starts it). Prints one line per flow and a final
'N passed, N failed' line; exits non-zero on failure.
"""
import os
import sys
import traceback

import hvac

ADDR = os.environ["VAULT_ADDR"]
ROOT = os.environ["VAULT_TOKEN"]
LDAP_URL = os.environ["LDAP_URL"]
MOUNT = "hvac-ldap"


def operator():
    return hvac.Client(url=ADDR, token=ROOT)


def flow_configure_groups_and_users():
    c = operator()
    if f"{MOUNT}/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("ldap", path=MOUNT)
    c.auth.ldap.configure(
        url=LDAP_URL,
        userdn="ou=people,dc=example,dc=com",
        userattr="uid",
        groupdn="ou=groups,dc=example,dc=com",
        groupfilter="(member={{.UserDN}})",
        groupattr="cn",
        token_ttl="20m",
        mount_point=MOUNT,
    )
    cfg = c.auth.ldap.read_configuration(mount_point=MOUNT)["data"]
    assert cfg["userattr"] == "uid" and cfg["url"] == LDAP_URL, cfg
    assert "bindpass" not in cfg, cfg
    c.auth.ldap.create_or_update_group("engineering", policies=["eng"], mount_point=MOUNT)
    assert c.auth.ldap.read_group("engineering", mount_point=MOUNT)["data"]["policies"] == ["eng"]
    assert "engineering" in c.auth.ldap.list_groups(mount_point=MOUNT)["data"]["keys"]
    c.auth.ldap.create_or_update_user("alice", policies=["alice-p"], groups=["extra"], mount_point=MOUNT)
    u = c.auth.ldap.read_user("alice", mount_point=MOUNT)["data"]
    assert u["policies"] == ["alice-p"] and u["groups"] == ["extra"], u
    assert "alice" in c.auth.ldap.list_users(mount_point=MOUNT)["data"]["keys"]


def flow_login():
    app = hvac.Client(url=ADDR)
    r = app.auth.ldap.login("alice", "alicepw", mount_point=MOUNT)
    assert sorted(r["auth"]["policies"]) == ["alice-p", "default", "eng"], r
    assert r["auth"]["lease_duration"] == 1200, r
    assert r["auth"]["metadata"]["username"] == "alice", r
    assert app.is_authenticated()


def flow_wrong_password_and_deleted_mappings():
    app = hvac.Client(url=ADDR)
    try:
        app.auth.ldap.login("alice", "wrong", mount_point=MOUNT)
        raise AssertionError("a wrong password logged in")
    except hvac.exceptions.InvalidRequest as e:
        assert "invalid username or password" in str(e), e
    c = operator()
    c.auth.ldap.delete_group("engineering", mount_point=MOUNT)
    c.auth.ldap.delete_user("alice", mount_point=MOUNT)
    r = hvac.Client(url=ADDR).auth.ldap.login("alice", "alicepw", mount_point=MOUNT)
    assert r["auth"]["policies"] == ["default"], r


def main():
    flows = [flow_configure_groups_and_users, flow_login, flow_wrong_password_and_deleted_mappings]
    passed = failed = 0
    for f in flows:
        try:
            f()
            passed += 1
            print(f"ok   {f.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {f.__name__}")
            traceback.print_exc()
    print(f"hvac ldap: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
