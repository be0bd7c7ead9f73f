"""A small OpenID Connect issuer on 127.0.0.1 for the trusted publishing tests.

It speaks the parts of the protocol a relying party uses: the discovery document
(/.well-known/openid-configuration) naming its JWKS (/jwks), ID tokens signed RS256 or ES256
(signed here with Python's `cryptography`, a second implementation beside the node's
`jsonwebtoken`), and GitHub Actions' token service (GET /gh-token?audience=... with the
runner's bearer token answers {"value": JWT}). Tests drive it through /admin/*: mint a token
with any claims, times, key or algorithm; rotate in a new key; set the claims the GitHub
service puts in its tokens.

Prints its URL on the first line of standard output, then serves until killed.
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

BEARER = "runner-secret"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Keys:
    def __init__(self):
        self.lock = threading.Lock()
        self.private = {
            "rsa-1": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ec-1": ("ES256", ec.generate_private_key(ec.SECP256R1())),
            # Never listed in the JWKS: a token it signs must be refused.
            "rogue": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        }
        self.listed = ["rsa-1", "ec-1"]

    def rotate(self):
        with self.lock:
            self.private["rsa-2"] = (
                "RS256",
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
            )
            self.listed.append("rsa-2")

    def jwks(self):
        out = []
        with self.lock:
            for kid in self.listed:
                alg, key = self.private[kid]
                pub = key.public_key().public_numbers()
                if alg == "RS256":
                    out.append({"kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
                                "n": uint(pub.n), "e": uint(pub.e)})
                else:
                    out.append({"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": "P-256",
                                "x": b64url(pub.x.to_bytes(32, "big")),
                                "y": b64url(pub.y.to_bytes(32, "big"))})
        return {"keys": out}

    def sign(self, kid, claims):
        with self.lock:
            alg, key = self.private[kid]
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        if alg == "RS256":
            sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + b64url(sig)


class State:
    keys = Keys()
    issuer = ""
    github_claims = {}


def mint(spec):
    now = int(time.time())
    claims = dict(spec.get("claims", {}))
    claims.setdefault("iss", State.issuer)
    claims.setdefault("iat", now)
    claims.setdefault("nbf", now + int(spec.get("nbf_in", -5)))
    claims.setdefault("exp", now + int(spec.get("exp_in", 300)))
    return State.keys.sign(spec.get("kid", "rsa-1"), claims)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/.well-known/openid-configuration":
            self.answer(200, {"issuer": State.issuer, "jwks_uri": State.issuer + "/jwks",
                              "response_types_supported": ["id_token"],
                              "subject_types_supported": ["public", "pairwise"],
                              "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
        elif url.path == "/jwks":
            self.answer(200, State.keys.jwks())
        elif url.path == "/gh-token":
            if self.headers.get("authorization", "") != "Bearer " + BEARER:
                self.answer(401, {"message": "bad runner token"})
                return
            audience = parse_qs(url.query).get("audience", [None])[0]
            claims = dict(State.github_claims)
            if audience is not None:
                claims["aud"] = audience
            self.answer(200, {"count": 1, "value": mint({"claims": claims})})
        else:
            self.answer(404, {"message": "not found"})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        spec = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/admin/mint":
            self.answer(200, {"token": mint(spec)})
        elif self.path == "/admin/rotate":
            State.keys.rotate()
            self.answer(200, {"kid": "rsa-2"})
        elif self.path == "/admin/github":
            State.github_claims = spec
            self.answer(200, {})
        else:
            self.answer(404, {"message": "not found"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    State.issuer = "http://127.0.0.1:%d" % server.server_address[1]
    print(State.issuer, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
