#!/usr/bin/env python3
"""Fuzzes a running Coffer server with schemathesis, from the OpenAPI document it serves.

    tests/schemathesis/run.py --addr 127.0.0.1:8200 --token root [--max-examples 5] [--workdir DIR]

Fetches /v1/sys/internal/specs/openapi with the token, leaves out the operations that would end
the run (sealing, revoking the token the run uses, audit devices that fail closed), and runs
schemathesis with the `coffer_not_a_server_error` check (hooks.py): any 5xx answer but the few
OpenBao-compatible ones listed there fails, and so does a dropped connection. Prints the figures
(paths, test cases, status counts, 5xx) and exits 1 on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hooks import is_compat_500  # noqa: E402

# Operations the fuzzer must not call: they do what they are meant to do and the rest of the
# run would only see 503 (sealed), 403 (its own token revoked) or 500 (an audit device that
# cannot write fails every request closed, on purpose). The log stream never ends by design.
EXCLUDED = {
    "/sys/monitor": None,
    "/sys/seal": None,
    "/sys/audit/{path}": None,
    "/auth/token/revoke-self": None,
    "/auth/token/revoke": None,
    "/auth/token/revoke-orphan": None,
    "/auth/token/revoke-accessor": None,
    "/sys/revoke-prefix/{prefix}": None,
    "/sys/revoke-force/{prefix}": None,
    "/sys/leases/revoke-prefix/{prefix}": None,
    "/sys/leases/revoke-force/{prefix}": None,
}


def fetch_spec(addr: str, token: str) -> dict:
    req = urllib.request.Request(
        f"http://{addr}/v1/sys/internal/specs/openapi", headers={"X-Vault-Token": token}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--max-examples", type=int, default=5)
    ap.add_argument(
        "--max-time", type=int, default=0, help="seconds to keep fuzzing for (repeats until spent); 0 = one pass"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    spec = fetch_spec(args.addr, args.token)
    for p in EXCLUDED:
        spec["paths"].pop(p, None)
    work = args.workdir or tempfile.mkdtemp(prefix="coffer-schemathesis-")
    os.makedirs(work, exist_ok=True)
    spec_path = os.path.join(work, "openapi.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    ndjson = os.path.join(work, "events.ndjson")
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", spec_path,
        "--url", f"http://{args.addr}/v1",
        "-H", f"X-Vault-Token: {args.token}",
        "--checks", "coffer_not_a_server_error",
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--request-timeout", "20",
        "--suppress-health-check", "all",
        "--continue-on-failure",
        "--report", "ndjson",
        "--report-ndjson-path", ndjson,
    ]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    print("+", " ".join(c if "Token" not in c else "-H X-Vault-Token: <redacted>" for c in cmd), flush=True)
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(
        os.environ,
        NO_COLOR="1",
        SCHEMATHESIS_TELEMETRY="false",
        SCHEMATHESIS_HOOKS="hooks",
        PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(cmd, env=env, cwd=work)
    cases, statuses, unexpected, compat = summarize(ndjson)
    for u in unexpected:
        print("5xx:", u)
    print(f"\nschemathesis: {len(spec['paths'])} paths, {cases} requests, {len(unexpected)} unexpected 5xx, "
          f"{compat} deliberate OpenBao-compatible 500s; statuses {dict(sorted(statuses.items()))}; "
          f"exit {proc.returncode}")
    return 0 if proc.returncode == 0 and not unexpected else 1


def summarize(ndjson: str):
    """Counts the requests the run made, by status, from the NDJSON event report; returns
    (requests, status counts, unexpected 5xx, deliberate OpenBao-compatible 500s)."""
    import base64

    cases, statuses, unexpected, compat = 0, {}, [], 0
    if not os.path.exists(ndjson):
        return cases, statuses, unexpected, compat
    with open(ndjson) as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            rec = ev.get("ScenarioFinished", {}).get("recorder", {})
            templates = {k: c.get("value", {}).get("path", "") for k, c in rec.get("cases", {}).items()}
            for cid, it in rec.get("interactions", {}).items():
                resp = it.get("response") or {}
                code = resp.get("status_code")
                if not isinstance(code, int):
                    continue
                cases += 1
                statuses[code] = statuses.get(code, 0) + 1
                if code < 500:
                    continue
                body = base64.b64decode((resp.get("content") or {}).get("$base64", "") or b"")
                method = it.get("request", {}).get("method", "")
                if is_compat_500(method, templates.get(cid, ""), code, body):
                    compat += 1
                else:
                    unexpected.append(f"{method} {it.get('request', {}).get('uri', '')} -> {code} {body[:300]!r}")
    return cases, statuses, unexpected, compat


if __name__ == "__main__":
    sys.exit(main())
