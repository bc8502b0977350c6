"""The database secrets engine through hvac, as a Python application uses it, against the server
at VAULT_ADDR (root token in VAULT_TOKEN) and the PostgreSQL superuser at PG_ADMIN_URL
(postgres://user:password@host:port/db). psql proves the credentials log in and that revoked
users are gone. Prints one line per flow and a final 'N passed, N failed' line; exits non-zero
on failure.

The flows: a connection (configure, read without the password, list, reset), a dynamic role and
its credentials (log in, renew, revoke), a static role (created, read, rotated on demand), root
rotation on a connection of its own.
"""
import os
import subprocess
import sys
import traceback
import uuid

import hvac

ADDR = os.environ["VAULT_ADDR"]
ROOT = os.environ["VAULT_TOKEN"]
PG = os.environ["PG_ADMIN_URL"]
_rest = PG.split("://", 1)[1]
_userinfo, HOSTDB = _rest.rsplit("@", 1)
PG_USER, PG_PW = _userinfo.split(":", 1)
TAG = uuid.uuid4().hex[:8]
MOUNT = f"db-{TAG}"
TEMPLATED = "postgresql://{{username}}:{{password}}@" + HOSTDB + "?sslmode=disable"
CREATE = [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
]


def psql(user, password, sql):
    env = {"PATH": os.environ.get("PATH", ""), "PGUSER": user, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    r = subprocess.run(
        ["psql", f"postgresql://{HOSTDB}?sslmode=disable", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
        env=env, capture_output=True, text=True,
    )
    return r.returncode == 0, r.stdout.strip()


def admin(sql):
    ok, out = psql(PG_USER, PG_PW, sql)
    assert ok, f"admin psql failed: {sql}"
    return out


def role_exists(name):
    return admin(f"SELECT count(*) FROM pg_roles WHERE rolname = '{name}'") == "1"


def client():
    return hvac.Client(url=ADDR, token=ROOT)


def setup():
    c = client()
    c.sys.enable_secrets_engine("database", path=MOUNT)
    c.secrets.database.configure(
        "pg", "postgresql-database-plugin", allowed_roles=["ro", "app"], mount_point=MOUNT,
        connection_url=TEMPLATED, username=PG_USER, password=PG_PW,
    )


def flow_1_connection():
    db = client().secrets.database
    cfg = db.read_connection("pg", mount_point=MOUNT)["data"]
    assert cfg["plugin_name"] == "postgresql-database-plugin", cfg
    assert "password" not in cfg["connection_details"], cfg
    assert cfg["connection_details"]["connection_url"] == TEMPLATED, cfg
    assert db.list_connections(mount_point=MOUNT)["data"]["keys"] == ["pg"]
    db.reset_connection("pg", mount_point=MOUNT)


def flow_2_dynamic_credentials():
    db = client().secrets.database
    db.create_role("ro", "pg", CREATE, default_ttl="1h", max_ttl="2h", mount_point=MOUNT)
    assert db.read_role("ro", mount_point=MOUNT)["data"]["creation_statements"] == CREATE
    creds = db.generate_credentials("ro", mount_point=MOUNT)
    user, pw = creds["data"]["username"], creds["data"]["password"]
    assert creds["lease_duration"] == 3600 and creds["renewable"], creds
    assert psql(user, pw, "SELECT current_user") == (True, user)
    renewed = client().sys.renew_lease(creds["lease_id"], increment=1800)
    assert renewed["lease_duration"] == 1800, renewed
    client().sys.revoke_lease(creds["lease_id"])
    assert not role_exists(user), "revoking the lease drops the user"


def flow_3_static_role():
    db = client().secrets.database
    user = f"hvac_static_{TAG}"
    admin(f"CREATE ROLE {user} LOGIN PASSWORD 'initial-pw'")
    try:
        db.create_static_role("app", "pg", user, [], rotation_period=3600, mount_point=MOUNT)
        p1 = db.get_static_credentials("app", mount_point=MOUNT)["data"]["password"]
        assert psql(user, p1, "SELECT 1")[0] and not psql(user, "initial-pw", "SELECT 1")[0]
        db.rotate_static_role_credentials("app", mount_point=MOUNT)
        p2 = db.get_static_credentials("app", mount_point=MOUNT)["data"]["password"]
        assert p1 != p2 and psql(user, p2, "SELECT 1")[0] and not psql(user, p1, "SELECT 1")[0]
        db.delete_static_role("app", mount_point=MOUNT)
    finally:
        admin(f"DROP ROLE IF EXISTS {user}")


def flow_4_rotate_root():
    db = client().secrets.database
    root = f"hvac_root_{TAG}"
    admin(f"CREATE ROLE {root} LOGIN CREATEROLE PASSWORD 'root-initial-pw'")
    try:
        db.configure(
            "rooted", "postgresql-database-plugin", allowed_roles=["*"], mount_point=MOUNT,
            connection_url=TEMPLATED, username=root, password="root-initial-pw",
        )
        db.rotate_root_credentials("rooted", mount_point=MOUNT)
        assert not psql(root, "root-initial-pw", "SELECT 1")[0], "the old root password still works"
        db.create_role("viaroot", "rooted", CREATE, mount_point=MOUNT)
        creds = db.generate_credentials("viaroot", mount_point=MOUNT)
        assert psql(creds["data"]["username"], creds["data"]["password"], "SELECT 1")[0]
        client().sys.revoke_lease(creds["lease_id"])
        db.delete_connection("rooted", mount_point=MOUNT)
    finally:
        admin(f"DROP ROLE IF EXISTS {root}")


def main():
    setup()
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
    client().sys.disable_secrets_engine(MOUNT)
    print(f"hvac database: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
