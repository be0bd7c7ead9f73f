#!/usr/bin/env python3
"""A C2SP tlog-mirror client, written from the specs alone (c2sp.org/tlog-mirror,
tlog-witness, tlog-tiles, RFC 6962 and the Merkle Tree Certificates draft's SUBTREE_PROOF),
so that the node's add-checkpoint and add-entries are tested against a second implementation.

It reads a log over tlog-tiles (LOG is the prefix that holds `checkpoint` and `tile/`):

  tlog_mirror.py checkpoint LOG OLD OUT
      writes an add-checkpoint body: `old OLD`, the consistency proof from OLD to the log's
      checkpoint, and the checkpoint.
  tlog_mirror.py entries LOG START END OUT [--packages N] [--bend I] [--truncate K]
                                         [--origin O] [--gzip]
      writes an add-entries body for [START, END) against the log's tree of size END: the
      first N packages of the canonical sequence (all by default); --bend flips a byte of
      entry I, --truncate drops the body's last K bytes, --origin names another log.
  tlog_mirror.py selftest
      checks this file's SUBTREE_PROOF against the draft's accumulated test vector.
"""

import argparse
import base64
import gzip
import hashlib
import struct
import sys
import urllib.request


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def subproof(m, leaves, complete):
    """RFC 6962 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def subtree_subproof(start, end, leaves, known):
    """The draft's SUBTREE_SUBPROOF(start, end, D_n, b)."""
    n = len(leaves)
    if start == 0 and end == n:
        return [] if known else [mth(leaves)]
    k = split(n)
    if end <= k:
        return subtree_subproof(start, end, leaves[:k], known) + [mth(leaves[k:])]
    if k <= start:
        return subtree_subproof(start - k, end - k, leaves[k:], known) + [mth(leaves[:k])]
    assert start == 0
    return subtree_subproof(0, end - k, leaves[k:], False) + [mth(leaves[:k])]


def subtree_proof(start, end, leaves):
    if start == end:
        return []
    return subtree_subproof(start, end, leaves, True)


def valid_subtree(start, end):
    if start > end:
        return False
    size = end - start
    ceil = 1
    while ceil < size:
        ceil *= 2
    return start % ceil == 0


def selftest():
    """The draft's accumulated vector for subtree consistency proofs (trees up to 130)."""
    d = [leaf(bytes([i])) for i in range(130)]
    h = hashlib.sha256()
    for n in range(131):
        for end in range(n + 1):
            for start in range(end + 1):
                if valid_subtree(start, end):
                    line = f"[{start}, {end}) {n}"
                    for p in subtree_proof(start, end, d[:n]):
                        line += " " + p.hex()
                    h.update((line + "\n").encode())
    want = "10fa99b37bf9bf9ffa26b412fbd98bd75363256d0b75d61bc4538b9c9c5a0a74"
    if h.hexdigest() != want:
        sys.exit(f"SUBTREE_PROOF does not match the draft: {h.hexdigest()}")
    print("ok")


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def tile_index(n):
    digits = str(n)
    groups = []
    while digits:
        groups.insert(0, digits[-3:].rjust(3, "0"))
        digits = digits[:-3]
    groups = groups or ["000"]
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def read_log(prefix):
    """The log's checkpoint (text, origin, size, root) and every entry, from its tiles."""
    prefix = prefix.rstrip("/") + "/"
    note = fetch(prefix + "checkpoint").decode()
    body = note.split("\n\n")[0]
    lines = body.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    entries = []
    for b in range((size + 255) // 256):
        width = min(256, size - b * 256)
        path = "tile/entries/" + tile_index(b) + ("" if width == 256 else f".p/{width}")
        data = fetch(prefix + path)
        at = 0
        while at < len(data):
            (n,) = struct.unpack(">H", data[at : at + 2])
            entries.append(data[at + 2 : at + 2 + n])
            at += 2 + n
    if len(entries) != size:
        sys.exit(f"the log's bundles hold {len(entries)} entries, not {size}")
    leaves = [leaf(e) for e in entries]
    if mth(leaves) != root:
        sys.exit("the log's entries do not make its checkpoint's root")
    return note, origin, size, entries, leaves


def add_checkpoint(args):
    note, _, size, _, leaves = read_log(args.log)
    old = int(args.old)
    proof = [] if old == 0 or old == size else subproof(old, leaves, True)
    out = f"old {old}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof)
    out += "\n" + note
    with open(args.out, "wb") as f:
        f.write(out.encode())


def add_entries(args):
    _, origin, _, entries, leaves = read_log(args.log)
    start, end = int(args.start), int(args.end)
    origin = (args.origin or origin).encode()
    tree = leaves[:end]
    out = bytearray()
    out += struct.pack(">H", len(origin)) + origin
    out += struct.pack(">QQH", start, end, 0)
    if start < end:
        rounded_start = start // 256 * 256
        rounded_end = (end + 255) // 256 * 256
        count = (rounded_end - rounded_start) // 256
        if args.packages is not None:
            count = min(count, int(args.packages))
        for i in range(count):
            lo = max(start, rounded_start + i * 256)
            hi = min(end, rounded_start + (i + 1) * 256)
            for k in range(lo, hi):
                e = bytearray(entries[k])
                if args.bend is not None and int(args.bend) == k:
                    e[len(e) // 2] ^= 0x20
                out += struct.pack(">H", len(e)) + e
            proof = subtree_proof(rounded_start + i * 256, hi, tree)
            out += bytes([len(proof)]) + b"".join(proof)
    if args.truncate:
        out = out[: len(out) - int(args.truncate)]
    data = gzip.compress(bytes(out)) if args.gzip else bytes(out)
    with open(args.out, "wb") as f:
        f.write(data)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("checkpoint")
    c.add_argument("log")
    c.add_argument("old")
    c.add_argument("out")
    e = sub.add_parser("entries")
    e.add_argument("log")
    e.add_argument("start")
    e.add_argument("end")
    e.add_argument("out")
    e.add_argument("--packages")
    e.add_argument("--bend")
    e.add_argument("--truncate")
    e.add_argument("--origin")
    e.add_argument("--gzip", action="store_true")
    sub.add_parser("selftest")
    args = p.parse_args()
    if args.cmd == "checkpoint":
        add_checkpoint(args)
    elif args.cmd == "entries":
        add_entries(args)
    else:
        selftest()


if __name__ == "__main__":
    main()
