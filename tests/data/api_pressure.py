"""Hostile and legitimate clients of furui's HTTPS API, run by
tests/export_api.rs inside the rig's namespace. Prints one JSON object.

argv: certificate directory. Source addresses (all on loopback):
127.0.0.2 opens TCP connections and never starts TLS; 127.0.0.3 completes
the handshake and never sends a request; 127.0.0.4 sends a request's
headers one byte at a time (slow loris); 127.0.0.5 sends 1,000 requests
with a certificate of no recipient; 127.0.0.1 is the analyst, reading
while all of that goes on.
"""
import http.client
import json
import socket
import ssl
import sys
import threading
import time

CERTS = sys.argv[1]
SERVER = ("127.0.0.1", 9443)
out = {}


def context(who):
    ctx = ssl.create_default_context(cafile=f"{CERTS}/ca.pem")
    ctx.load_cert_chain(f"{CERTS}/{who}.pem", f"{CERTS}/{who}.key")
    return ctx


def tcp_from(source):
    s = socket.create_connection(SERVER, timeout=30, source_address=(source, 0))
    return s


def closed_after(sock, limit):
    """Seconds until the server closed `sock` (EOF or reset), or None."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return None
    except (ConnectionResetError, ssl.SSLError, OSError):
        pass
    return round(time.monotonic() - t0, 2)


def never_tls():
    socks = []
    for _ in range(10):
        try:
            socks.append(tcp_from("127.0.0.2"))
        except OSError:
            socks.append(None)
    # Beyond the per-address cap, closed at once; the rest at the
    # handshake deadline.
    res = []
    threads = []
    for s in socks:
        def run(s=s):
            res.append(closed_after(s, 30) if s else 0.0)
        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    out["never_tls_closed_after"] = sorted(res, key=lambda x: (x is None, x))


def never_request():
    s = context("analyst").wrap_socket(tcp_from("127.0.0.3"), server_hostname="127.0.0.1")
    out["never_request_closed_after"] = closed_after(s, 30)


def slow_loris():
    s = context("analyst").wrap_socket(tcp_from("127.0.0.4"), server_hostname="127.0.0.1")
    head = b"GET /v1/records?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    t0 = time.monotonic()
    sent = 0
    try:
        for b in head:
            s.sendall(bytes([b]))
            sent += 1
            time.sleep(0.25)
    except (OSError, ssl.SSLError):
        pass
    # Whatever the server did, it did not answer the request.
    try:
        s.settimeout(5)
        reply = s.recv(4096)
    except (OSError, ssl.SSLError):
        reply = b""
    out["slow_loris"] = {
        "sent": sent,
        "of": len(head),
        "seconds": round(time.monotonic() - t0, 2),
        "answered": reply.startswith(b"HTTP/1.1 200"),
    }


def stranger():
    statuses = {}
    conn = None
    t0 = time.monotonic()
    for _ in range(1000):
        if conn is None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", 9443, context=context("stranger"), timeout=10, source_address=("127.0.0.5", 0)
            )
        try:
            conn.request("GET", "/v1/records?after=0")
            r = conn.getresponse()
            r.read()
            statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, ssl.SSLError):
            statuses["error"] = statuses.get("error", 0) + 1
            conn = None
    out["stranger"] = {"statuses": {str(k): v for k, v in statuses.items()}, "seconds": round(time.monotonic() - t0, 2)}


def analyst():
    """Reads every half second while the others press; each read has 5 s."""
    reads = []
    for _ in range(8):
        time.sleep(0.5)
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", 9443, context=context("analyst"), timeout=5)
            conn.request("GET", "/v1/records?after=0")
            r = conn.getresponse()
            body = r.read().decode()
            reads.append({"status": r.status, "lines": len(body.splitlines()), "seconds": round(time.monotonic() - t0, 2)})
            conn.close()
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            reads.append({"status": type(e).__name__})
    out["analyst"] = reads


threads = [threading.Thread(target=f) for f in (never_tls, never_request, slow_loris, stranger)]
for t in threads:
    t.start()
time.sleep(0.5)
analyst()
for t in threads:
    t.join()
print(json.dumps(out))
