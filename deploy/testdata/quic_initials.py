#!/usr/bin/env python3
"""Writes the QUIC Initial test captures in tests/data/ with an independent
QUIC implementation (aioquic), so furui's Initial decryption and JA4 `q`
are tested against packets it did not build itself.

    python3 -m venv /tmp/qv && /tmp/qv/bin/pip install aioquic==1.7.2
    /tmp/qv/bin/python deploy/testdata/quic_initials.py tests/data

Each capture holds the client's first flight only (Ethernet/IPv4/UDP,
documentation addresses). The expected JA4 of each is computed from
tshark's own decryption of the same capture by
deploy/testdata/ja4_from_tshark.py and written next to it.
"""
import struct
import sys

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicProtocolVersion

SRC, DST = "198.51.100.7", "203.0.113.9"
SPORT, DPORT = 50123, 443


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(udp_payload: bytes) -> bytes:
    ip = lambda a: bytes(int(x) for x in a.split("."))
    udp = struct.pack("!HHHH", SPORT, DPORT, 8 + len(udp_payload), 0) + udp_payload
    pseudo = ip(SRC) + ip(DST) + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip(SRC), ip(DST))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    eth = bytes.fromhex("02000000000202000000000108 00".replace(" ", ""))
    return eth + hdr + udp


def write_pcap(path: str, datagrams: list) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, d in enumerate(datagrams):
            fr = frame(d)
            f.write(struct.pack("<IIII", 1_700_000_000, i, len(fr), len(fr)))
            f.write(fr)


def first_flight(version: int, alpn: list) -> list:
    cfg = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name="quic.example")
    cfg.original_version = version
    cfg.supported_versions = [version]
    conn = QuicConnection(configuration=cfg)
    conn.connect((DST, DPORT), now=0.0)
    return [d for d, _ in conn.datagrams_to_send(now=0.0)]


def main(out: str) -> None:
    cases = {
        "quic-v1-initial": (QuicProtocolVersion.VERSION_1, ["h3"]),
        "quic-v2-initial": (QuicProtocolVersion.VERSION_2, ["h3"]),
        # Long ALPN list: the ClientHello no longer fits one Initial, so
        # its CRYPTO data spans two packets (two datagrams).
        "quic-v1-split-initial": (QuicProtocolVersion.VERSION_1, ["h3"] + ["x" * 200 + str(i) for i in range(8)]),
    }
    for name, (version, alpn) in cases.items():
        dgrams = first_flight(version, alpn)
        write_pcap(f"{out}/{name}.pcap", dgrams)
        print(name, [len(d) for d in dgrams])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
