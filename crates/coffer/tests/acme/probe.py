"""A small ACME client for the bad-input checks of tests/pki_acme.rs: it signs JWS requests
itself (ES256 with the `cryptography` package) so it can send what real clients never do: a
made-up nonce, a broken signature, an order for a name the role forbids, a new account
without the external account binding the server requires. Prints one JSON object: each
check's HTTP status, Content-Type and ACME error type.

usage: probe.py DIRECTORY_URL CHECK [EAB_KID EAB_KEY]"""
import base64, hashlib, hmac, json, os, sys

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Client:
    def __init__(self, directory):
        self.s = requests.Session()
        self.dir = self.s.get(directory).json()
        self.key = ec.generate_private_key(ec.SECP256R1())
        n = self.key.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
        self.kid = None

    def nonce(self):
        return self.s.head(self.dir["newNonce"]).headers["Replay-Nonce"]

    def jws(self, url, payload, nonce=None, break_sig=False, use_jwk=False):
        prot = {"alg": "ES256", "nonce": nonce or self.nonce(), "url": url}
        if self.kid and not use_jwk:
            prot["kid"] = self.kid
        else:
            prot["jwk"] = self.jwk
        p = b64(json.dumps(prot).encode())
        pl = "" if payload is None else b64(json.dumps(payload).encode())
        der = self.key.sign(f"{p}.{pl}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if break_sig:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        return {"protected": p, "payload": pl, "signature": b64(sig)}

    def post(self, url, payload, **kw):
        r = self.s.post(url, data=json.dumps(self.jws(url, payload, **kw)), headers={"Content-Type": "application/jose+json"})
        try:
            body = r.json()
        except ValueError:
            body = {}
        return {"status": r.status_code, "content_type": r.headers.get("Content-Type", ""),
                "type": body.get("type", ""), "detail": body.get("detail", ""),
                "location": r.headers.get("Location", ""), "body": body}

    def exists(self):
        r = self.post(self.dir["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
        return r["status"] in (200, 201)

    def register(self, **extra):
        payload = {"termsOfServiceAgreed": True}
        payload.update(extra)
        r = self.post(self.dir["newAccount"], payload, use_jwk=True)
        if r["status"] in (200, 201):
            self.kid = r["location"]
        return r


def main():
    directory, check = sys.argv[1], sys.argv[2]
    c = Client(directory)
    out = {"directory": c.dir}
    if check == "bad-nonce":
        out["result"] = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, nonce="bm90LWEtbm9uY2U", use_jwk=True)
        out["stored"] = c.exists()
    elif check == "reused-nonce":
        n = c.nonce()
        out["first"] = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, nonce=n, use_jwk=True)
        c.kid = None
        out["result"] = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, nonce=n, use_jwk=True)
    elif check == "bad-signature":
        out["result"] = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, break_sig=True, use_jwk=True)
        out["stored"] = c.exists()
    elif check == "forbidden-name":
        out["account"] = c.register()
        out["result"] = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": sys.argv[3]}]})
        orders = c.post(out["account"]["body"]["orders"], None)
        out["orders"] = orders["body"].get("orders")
    elif check == "eab-missing":
        out["result"] = c.register()
        out["stored"] = c.exists()
    elif check == "eab-bound":
        kid, key = sys.argv[3], sys.argv[4]
        mac_key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        prot = b64(json.dumps({"alg": "HS256", "kid": kid, "url": c.dir["newAccount"]}).encode())
        pl = b64(json.dumps(c.jwk).encode())
        sig = b64(hmac.new(mac_key, f"{prot}.{pl}".encode(), hashlib.sha256).digest())
        out["result"] = c.register(externalAccountBinding={"protected": prot, "payload": pl, "signature": sig})
        out["stored"] = c.exists()
    elif check == "http01-unanswered":
        # Nothing answers on port 80: the challenge is retried, then the authorization fails.
        import time
        out["account"] = c.register()
        order = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "localhost"}]})
        authz_url = order["body"]["authorizations"][0]
        authz = c.post(authz_url, None)["body"]
        ch = [x for x in authz["challenges"] if x["type"] == "http-01"][0]
        out["challenge"] = c.post(ch["url"], {})
        start = time.time()
        while time.time() - start < 150:
            authz = c.post(authz_url, None)["body"]
            if authz["status"] != "pending":
                break
            time.sleep(1)
        out["seconds"] = round(time.time() - start)
        out["authz"] = authz
        out["order"] = c.post(order["location"], None)["body"]
    elif check == "lifecycle":
        # dns-01 through the test DNS server's record directory, then revocation by the
        # certificate's key, key roll-over and deactivation.
        import time
        from cryptography import x509
        from cryptography.x509.oid import NameOID
        from cryptography.hazmat.primitives import serialization
        records, name = sys.argv[3], sys.argv[4]
        out["account"] = c.register(contact=["mailto:ops@example.com"])
        out["contact_update"] = c.post(c.kid, {"contact": ["mailto:pki@example.com"]})
        out["bad_contact"] = c.post(c.kid, {"contact": ["tel:+1555"]})
        order = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
        out["order"] = order
        authz_url = order["body"]["authorizations"][0]
        authz = c.post(authz_url, None)["body"]
        ch = [x for x in authz["challenges"] if x["type"] == "dns-01"][0]
        thumb = b64(hashlib.sha256(json.dumps(c.jwk, sort_keys=True, separators=(",", ":")).encode()).digest())
        digest = b64(hashlib.sha256(f"{ch['token']}.{thumb}".encode()).digest())
        with open(os.path.join(records, f"_acme-challenge.{name}"), "w") as f:
            f.write(digest + "\n")
        out["early_finalize"] = c.post(order["body"]["finalize"], {"csr": "AAAA"})
        c.post(ch["url"], {})
        for _ in range(60):
            authz = c.post(authz_url, None)["body"]
            if authz["status"] != "pending":
                break
            time.sleep(0.5)
        out["authz"] = authz
        cert_key = ec.generate_private_key(ec.SECP256R1())
        def csr_for(names):
            b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            return b64(b.sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
        out["wrong_csr"] = c.post(order["body"]["finalize"], {"csr": csr_for([name, "other." + name])})
        out["finalize"] = c.post(order["body"]["finalize"], {"csr": csr_for([name])})
        r = c.s.post(out["finalize"]["body"]["certificate"], data=json.dumps(c.jws(out["finalize"]["body"]["certificate"], None)),
                     headers={"Content-Type": "application/jose+json"})
        out["cert_status"], out["cert_type"], pem = r.status_code, r.headers.get("Content-Type"), r.text
        out["pem"] = pem
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
        # Revocation signed with the certificate's own key (jwk), not the account's.
        other = Client.__new__(Client)
        other.s, other.dir, other.key, other.kid = c.s, c.dir, cert_key, None
        n = cert_key.public_key().public_numbers()
        other.jwk = {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
        stranger = Client(sys.argv[1])
        out["revoke_by_stranger"] = stranger.post(c.dir["revokeCert"], {"certificate": b64(der)}, use_jwk=True)
        out["revoke"] = other.post(c.dir["revokeCert"], {"certificate": b64(der)}, use_jwk=True)
        out["revoke_again"] = c.post(c.dir["revokeCert"], {"certificate": b64(der)})
        # Key roll-over: the new key signs the inner JWS, the old key the outer one.
        new_key = ec.generate_private_key(ec.SECP256R1())
        nn = new_key.public_key().public_numbers()
        new_jwk = {"kty": "EC", "crv": "P-256", "x": b64(nn.x.to_bytes(32, "big")), "y": b64(nn.y.to_bytes(32, "big"))}
        inner_p = b64(json.dumps({"alg": "ES256", "jwk": new_jwk, "url": c.dir["keyChange"]}).encode())
        inner_pl = b64(json.dumps({"account": c.kid, "oldKey": c.jwk}).encode())
        r_, s_ = utils.decode_dss_signature(new_key.sign(f"{inner_p}.{inner_pl}".encode(), ec.ECDSA(hashes.SHA256())))
        inner = {"protected": inner_p, "payload": inner_pl, "signature": b64(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))}
        out["key_change"] = c.post(c.dir["keyChange"], inner)
        old_kid = c.kid
        c.kid = None
        out["old_key_exists"] = c.exists()
        c.key, c.jwk, c.kid = new_key, new_jwk, old_kid
        out["new_key_exists"] = c.exists()
        out["deactivate"] = c.post(c.kid, {"status": "deactivated"})
        out["after_deactivate"] = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
    elif check == "tls-alpn":
        # openssl s_server on 127.0.0.1:443 answers acme-tls/1 with a certificate carrying the
        # acmeIdentifier extension (RFC 8737), made with `openssl req`.
        import subprocess, time
        good = sys.argv[3] == "good"
        out["account"] = c.register()
        order = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "localhost"}]})
        authz_url = order["body"]["authorizations"][0]
        authz = c.post(authz_url, None)["body"]
        out["offered"] = sorted(x["type"] for x in authz["challenges"])
        ch = [x for x in authz["challenges"] if x["type"] == "tls-alpn-01"][0]
        thumb = b64(hashlib.sha256(json.dumps(c.jwk, sort_keys=True, separators=(",", ":")).encode()).digest())
        key_auth = f"{ch['token']}.{thumb}" if good else f"{ch['token']}.wrong"
        digest = hashlib.sha256(key_auth.encode()).hexdigest()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-addext", f"1.3.6.1.5.5.7.1.31=critical,DER:0420{digest}",
                        "-keyout", "alpn.key", "-out", "alpn.pem"], check=True, capture_output=True)
        server = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:443", "-cert", "alpn.pem",
                                   "-key", "alpn.key", "-alpn", "acme-tls/1", "-tls1_3", "-quiet"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            out["challenge"] = c.post(ch["url"], {})
            start = time.time()
            while time.time() - start < (20 if good else 150):
                authz = c.post(authz_url, None)["body"]
                if authz["status"] != "pending":
                    break
                time.sleep(0.5)
            out["authz"] = authz
        finally:
            server.kill()
            server.wait()
    elif check == "algs":
        # New accounts signed with other algorithms: ES384, ES512, EdDSA (Ed25519), RS256 with a
        # 2048-bit and a 1024-bit key, and an HMAC algorithm no account key can use.
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
        def account(alg, key):
            pub = key.public_key()
            if alg.startswith("ES"):
                size = {"ES384": 48, "ES512": 66}[alg]
                n = pub.public_numbers()
                jwk = {"kty": "EC", "crv": {"ES384": "P-384", "ES512": "P-521"}[alg],
                       "x": b64(n.x.to_bytes(size, "big")), "y": b64(n.y.to_bytes(size, "big"))}
            elif alg == "EdDSA":
                from cryptography.hazmat.primitives import serialization
                raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
            else:
                n = pub.public_numbers()
                jwk = {"kty": "RSA", "n": b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
                       "e": b64(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big"))}
            hdr_alg = "HS256" if alg == "HS256-on-RSA" else alg
            prot = b64(json.dumps({"alg": hdr_alg, "nonce": c.nonce(), "url": c.dir["newAccount"], "jwk": jwk}).encode())
            pl = b64(json.dumps({"termsOfServiceAgreed": True}).encode())
            msg = f"{prot}.{pl}".encode()
            if alg.startswith("ES"):
                h = hashes.SHA384() if alg == "ES384" else hashes.SHA512()
                r_, s_ = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(h)))
                size = {"ES384": 48, "ES512": 66}[alg]
                sig = r_.to_bytes(size, "big") + s_.to_bytes(size, "big")
            elif alg == "EdDSA":
                sig = key.sign(msg)
            else:
                sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
            r = c.s.post(c.dir["newAccount"], data=json.dumps({"protected": prot, "payload": pl, "signature": b64(sig)}),
                         headers={"Content-Type": "application/jose+json"})
            body = r.json() if r.content else {}
            return {"status": r.status_code, "type": body.get("type", ""), "detail": body.get("detail", ""),
                    "content_type": r.headers.get("Content-Type", "")}
        out["ES384"] = account("ES384", ec.generate_private_key(ec.SECP384R1()))
        out["ES512"] = account("ES512", ec.generate_private_key(ec.SECP521R1()))
        out["EdDSA"] = account("EdDSA", ed25519.Ed25519PrivateKey.generate())
        out["RS256"] = account("RS256", rsa.generate_private_key(65537, 2048))
        out["RS256-1024"] = account("RS256", rsa.generate_private_key(65537, 1024))
        out["HS256"] = account("HS256-on-RSA", rsa.generate_private_key(65537, 2048))
    elif check == "cross-directory":
        # An account belongs to the directory it was made in (sys.argv[3]: another directory).
        out["account"] = c.register()
        other = Client(sys.argv[3])
        other.key, other.jwk, other.kid = c.key, c.jwk, c.kid
        out["result"] = other.post(other.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "www.example.com"}]})
        other.kid = None
        out["exists_there"] = other.exists()
        out["exists_here"] = c.exists()
    print(json.dumps(out))


main()
