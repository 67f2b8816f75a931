#!/usr/bin/env python3
"""Computes JA4 for every ClientHello in a capture from *tshark's* dissection
(tshark decrypts QUIC Initial packets itself), as a decoder independent of
furui's. Self-check first: it must reproduce FoxIO's published JA4 for
two of ../shared/pcaps/ja4__*.pcap, or it refuses to write anything.

    python3 deploy/testdata/ja4_from_tshark.py tests/data/quic-v1-initial.pcap ...
"""
import hashlib
import json
import subprocess
import sys

FIELDS = [
    "frame.protocols",
    "tls.handshake.type",
    "tls.handshake.ciphersuite",
    "tls.handshake.extension.type",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.version",
]
VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}


def grease(v: int) -> bool:
    return v & 0x0F0F == 0x0A0A and v >> 8 == v & 0xFF


def ints(s: str) -> list:
    return [int(x, 0) for x in s.split(",") if x]


def h12(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "0" * 12


def ja4(row: dict) -> str:
    quic = "quic" in row["frame.protocols"].split(":")
    ciphers = [c for c in ints(row["tls.handshake.ciphersuite"]) if not grease(c)]
    exts = [e for e in ints(row["tls.handshake.extension.type"]) if not grease(e)]
    sv = [v for v in ints(row["tls.handshake.extensions.supported_version"]) if not grease(v)]
    version = max(sv) if sv else ints(row["tls.handshake.version"])[0]
    alpn = row["tls.handshake.extensions_alpn_str"].split(",")[0]
    a_alpn = (alpn[0] + alpn[-1]) if alpn else "00"
    sigs = [s for s in row["sigs"] if not grease(s)]
    a = "%s%s%s%02d%02d%s" % (
        "q" if quic else "t",
        VERSIONS.get(version, "00"),
        "d" if 0 in exts else "i",
        min(len(ciphers), 99),
        min(len(exts), 99),
        a_alpn,
    )
    b = h12(",".join("%04x" % c for c in sorted(ciphers)))
    c_exts = ",".join("%04x" % e for e in sorted(exts) if e not in (0x0000, 0x0010))
    c_in = c_exts + ("_" + ",".join("%04x" % s for s in sigs) if sigs and c_exts else "")
    return f"{a}_{b}_{h12(c_in)}"


def sig_algs(node) -> list:
    """The signature_algorithms extension's list only (other extensions,
    e.g. delegated_credentials, carry the same field name)."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k.startswith("Extension: signature_algorithms ") and isinstance(v, dict):
                algs = v.get("tls.handshake.sig_hash_algs", {}).get("tls.handshake.sig_hash_alg", [])
                found.append([int(a, 0) for a in (algs if isinstance(algs, list) else [algs])])
            else:
                found += sig_algs(v)
    elif isinstance(node, list):
        for v in node:
            found += sig_algs(v)
    return found


def keep_repeats(pairs: list) -> dict:
    """tshark's JSON repeats a key for each list item; keep them all."""
    out = {}
    for k, v in pairs:
        if k in out:
            out[k] = (out[k] if isinstance(out[k], list) else [out[k]]) + [v]
        else:
            out[k] = v
    return out


def tshark(path: str, *args: str) -> str:
    cmd = ["tshark", "-r", path, "-Y", "tls.handshake.type == 1", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def hellos(path: str) -> list:
    args = ["-T", "fields", "-E", "separator=\t"]
    for f in FIELDS:
        args += ["-e", f]
    rows = [dict(zip(FIELDS, line.split("\t"))) for line in tshark(path, *args).splitlines() if line]
    trees = json.loads(tshark(path, "-T", "json"), object_pairs_hook=keep_repeats)
    for row, tree in zip(rows, trees):
        lists = sig_algs(tree)
        row["sigs"] = lists[0] if lists else []
    return [ja4(row) for row in rows]


def main(paths: list) -> None:
    published = {
        "ja4__tls12.pcap": "t13d1715h2_5b57614c22b0_3d5424432f57",
        "ja4__tls-alpn-h2.pcap": "t12d4605h2_85626a9a5f7f_aaf95bb78ec9",
    }
    for name, want in published.items():
        got = hellos(f"../shared/pcaps/{name}")
        if got != [want]:
            sys.exit(f"self-check failed on {name}: {got} != [{want}]")
    for p in paths:
        for v in hellos(p):
            print(p.rsplit("/", 1)[-1], v)


if __name__ == "__main__":
    main(sys.argv[1:])
