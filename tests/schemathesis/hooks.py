"""Schemathesis hooks for Coffer: the `coffer_not_a_server_error` check.

Like schemathesis' own `not_a_server_error`, but it lets through the few 500 answers Coffer
gives on purpose because OpenBao gives the very same ones (status and message, checked against
`bao server -dev` 2.7.2). Anything else at 500 or above fails.
"""
import json
import re

import schemathesis

# (method, path template regex, error message regex) of the deliberate 500s.
COMPAT_500 = [
    # userpass: a login without a password; password/policy changes of an unknown user.
    ("POST|PUT", r"/auth/[^{}]+/login/\{username\}", r"missing password"),
    ("POST|PUT", r"/auth/[^{}]+/users/\{username\}/(password|policies)", r"username does not exist"),
    # approle: a login without role_id; secret-id operations on an unknown role or accessor.
    ("POST|PUT", r"/auth/[^{}]+/login", r"missing role_id"),
    (
        "POST|PUT|DELETE",
        r"/auth/[^{}]+/role/\{role_name\}/secret-id(-accessor)?/(lookup|destroy)",
        r'role ".*" does not exist|failed to find accessor entry for secret_id_accessor: .*',
    ),
]


def error_messages(body: bytes) -> list:
    try:
        v = json.loads(body or b"{}")
    except ValueError:
        return []
    errs = v.get("errors") if isinstance(v, dict) else None
    return [e for e in errs if isinstance(e, str)] if isinstance(errs, list) else []


def is_compat_500(method: str, template: str, status: int, body: bytes) -> bool:
    if status != 500:
        return False
    msgs = error_messages(body)
    return bool(msgs) and any(
        re.fullmatch(m, method) and re.fullmatch(p, template) and all(re.fullmatch(e, x, re.S) for x in msgs)
        for m, p, e in COMPAT_500
    )


@schemathesis.check
def coffer_not_a_server_error(ctx, response, case):
    """Fails on any 5xx answer but the deliberate, OpenBao-compatible ones above."""
    status = response.status_code
    if status < 500 or is_compat_500(case.method.upper(), case.path, status, response.content):
        return None
    raise AssertionError(f"Server error {status}: {response.content[:500]!r}")
