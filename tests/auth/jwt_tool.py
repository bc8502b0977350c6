"""Keys and tokens for the JWT/OIDC and Kubernetes auth tests (PyJWT + cryptography).

  jwt_tool.py jwks KEY.pem...              print a JWKS of the keys' public halves (kid = file stem)
  jwt_tool.py sign KEY.pem ALG KID CLAIMS  print a JWT signed with KEY (CLAIMS: JSON; a string
                                           value "now", "now+N" or "now-N" becomes a timestamp)
  jwt_tool.py hs256 SECRET CLAIMS          print an HS256 JWT keyed with SECRET (text)
  jwt_tool.py none CLAIMS                  print an unsigned (alg none) JWT
"""
import json
import pathlib
import re
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def claims(text):
    now = int(time.time())
    c = json.loads(text)
    for k, v in list(c.items()):
        m = re.fullmatch(r"now([+-]\d+)?", v) if isinstance(v, str) else None
        if m:
            c[k] = now + int(m.group(1) or 0)
    return c


def private(path):
    return serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)


def main(argv):
    cmd = argv[1]
    if cmd == "jwks":
        keys = []
        for p in argv[2:]:
            pub = private(p).public_key()
            algo = (
                RSAAlgorithm
                if isinstance(pub, rsa.RSAPublicKey)
                else ECAlgorithm
                if isinstance(pub, ec.EllipticCurvePublicKey)
                else OKPAlgorithm
            )
            k = json.loads(algo.to_jwk(pub))
            k["kid"] = pathlib.Path(p).stem
            k["use"] = "sig"
            keys.append(k)
        print(json.dumps({"keys": keys}))
    elif cmd == "sign":
        key, alg, kid, c = argv[2], argv[3], argv[4], claims(argv[5])
        headers = {"kid": kid} if kid else None
        print(jwt.encode(c, private(key), algorithm=alg, headers=headers))
    elif cmd == "hs256":
        # PyJWT refuses PEM text as an HMAC key; sign by hand to build the confusion attack.
        import base64, hashlib, hmac
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims(argv[3])).encode())
        sig = hmac.new(argv[2].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        print(f"{head}.{body}.{b64(sig)}")
    elif cmd == "none":
        print(jwt.encode(claims(argv[2]), None, algorithm="none"))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
