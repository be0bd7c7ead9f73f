"""Read-token vectors made by a second implementation (Python `cryptography`), for
`spec/tests/main.rs`: the Rust side must accept the valid ones, refuse the others with the
stated reason, and sign the same claims to the same text. Run: python3 gen.py > tokens.json"""
import base64, hashlib, json
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

seed = bytes(range(32))
key = Ed25519PrivateKey.from_private_bytes(seed)
pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
key_id = hashlib.sha256(pub).digest()[:8].hex()
other = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))

def token(claims, signer=key, payload=None):
    if payload is None:
        payload = json.dumps(claims, separators=(",", ":")).encode()
    sig = signer.sign(b"pgext/token/v1\n" + payload)
    return "pgext1." + b64url(payload) + "." + b64url(sig)

def claims(**over):
    c = {"origin": "acme.example/log", "user": "alice", "key": key_id, "scope": ["read"],
         "iat": 1764500000, "exp": 1767092000, "nonce": "00112233445566778899aabbccddeeff"}
    c.update(over)
    return c

NOW = 1764600000
cases = [
    {"name": "read", "token": token(claims()), "claims": claims(), "result": "ok"},
    {"name": "publish-read", "token": token(claims(scope=["publish", "read"])),
     "claims": claims(scope=["publish", "read"]), "result": "ok"},
    {"name": "expired", "token": token(claims(exp=NOW - 1)), "result": "expired"},
    {"name": "issued-in-the-future", "token": token(claims(iat=NOW + 3600, exp=NOW + 7200)),
     "result": "not-yet-valid"},
    {"name": "lives-too-long", "token": token(claims(iat=NOW - 10, exp=NOW + 401 * 86400)),
     "result": "not-yet-valid"},
    {"name": "another-origin", "token": token(claims(origin="public.example/log")),
     "result": "wrong-origin"},
    {"name": "signed-by-another-key", "token": token(claims(), signer=other),
     "result": "not-a-member"},
    {"name": "unknown-account", "token": token(claims(user="mallory")), "result": "not-a-member"},
    {"name": "unknown-field", "token": token(None, payload=json.dumps(dict(claims(), admin=True),
     separators=(",", ":")).encode()), "result": "malformed"},
    {"name": "unsorted-scope", "token": token(claims(scope=["read", "publish"])),
     "result": "malformed"},
    {"name": "empty-scope", "token": token(claims(scope=[])), "result": "malformed"},
    {"name": "unknown-scope", "token": token(claims(scope=["admin"])), "result": "malformed"},
    {"name": "short-key-id", "token": token(claims(key="abcd")), "result": "malformed"},
    {"name": "truncated", "token": token(claims())[:-10], "result": "malformed"},
    {"name": "no-prefix", "token": token(claims())[len("pgext1."):], "result": "malformed"},
    {"name": "padded-base64", "token": token(claims()) + "=", "result": "malformed"},
    {"name": "too-long", "token": "pgext1." + "A" * 1100 + ".B", "result": "malformed"},
]
print(json.dumps({"seed": seed.hex(), "public_key": base64.b64encode(pub).decode(),
                  "key_id": key_id, "now": NOW, "cases": cases}, indent=1))
