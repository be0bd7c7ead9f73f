#!/usr/bin/env python3
"""ML-DSA-44 cosignatures (C2SP tlog-cosignature, type 0x06) by a second implementation:
pyca/cryptography (OpenSSL's ML-DSA). pgext's own code never produces what its tests expect.

  mldsa44.py vectors            print the JSON vector file spec/vectors/tlog/ml-dsa-44/ holds
  mldsa44.py verify VKEY NOTE   exit 0 when NOTE (a file) carries a valid cosignature by VKEY
"""
import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

LABEL = b"subtree/v1\n\x00"


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x06" + public).digest()[:4]


def message(name: str, ts: int, origin: str, start: int, end: int, root: bytes) -> bytes:
    n, o = name.encode(), origin.encode()
    return (LABEL + bytes([len(n)]) + n + struct.pack(">Q", ts) + bytes([len(o)]) + o
            + struct.pack(">QQ", start, end) + root)


def checkpoint(text: str):
    origin, size, root = text.split("\n")[:3]
    return origin, int(size), base64.b64decode(root)


def vectors() -> dict:
    seed = hashlib.sha256(b"pgext ml-dsa-44 test cosigner").digest()
    name = "witness.pgext.test/pq"
    key = mldsa.MLDSA44PrivateKey.from_seed_bytes(seed)
    public = key.public_key().public_bytes_raw()
    kid = key_id(name, public)
    origin = "log.pgext.test"
    cases = []
    for size, root, ts in [
        (0, hashlib.sha256(b"").digest(), 1767139200),
        (20852163, hashlib.sha256(b"pgext root").digest(), 1796083200),
    ]:
        text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        msg = message(name, ts, origin, 0, size, root)
        sig = key.sign(msg)  # FIPS 204 pure ML-DSA, empty context, hedged
        line = "— %s %s\n" % (name, base64.b64encode(kid + struct.pack(">Q", ts) + sig).decode())
        cases.append({"text": text, "time": ts, "message_hex": msg.hex(), "note": text + "\n" + line})
    return {
        "generator": "tests/tools/mldsa44.py, pyca/cryptography %s" % __import__("cryptography").__version__,
        "name": name,
        "seed_hex": seed.hex(),
        "public_key": base64.b64encode(public).decode(),
        "key_id": kid.hex(),
        "vkey": "%s+%s+%s" % (name, kid.hex(), base64.b64encode(b"\x06" + public).decode()),
        "cases": cases,
    }


def verify(vkey: str, note: str) -> bool:
    name, kid_hex, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    if raw[0] != 6 or key_id(name, raw[1:]).hex() != kid_hex:
        return False
    public = mldsa.MLDSA44PublicKey.from_public_bytes(raw[1:])
    text, sigs = note.rsplit("\n\n", 1)
    text += "\n"
    origin, size, root = checkpoint(text)
    for line in sigs.strip("\n").split("\n"):
        who, b64sig = line[2:].split(" ", 1)
        sig = base64.b64decode(b64sig)
        if who != name or sig[:4].hex() != kid_hex:
            continue
        ts = struct.unpack(">Q", sig[4:12])[0]
        try:
            public.verify(sig[12:], message(name, ts, origin, 0, size, root))
            return True
        except InvalidSignature:
            return False
    return False


if __name__ == "__main__":
    if sys.argv[1:2] == ["vectors"]:
        print(json.dumps(vectors(), indent=1))
    elif sys.argv[1:2] == ["verify"] and len(sys.argv) == 4:
        sys.exit(0 if verify(sys.argv[2], open(sys.argv[3], encoding="utf-8").read()) else 1)
    else:
        sys.exit(__doc__)
