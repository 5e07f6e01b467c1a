#!/usr/bin/env python3
"""Which etcd v3 client the cluster store uses, by measurement.

Starts one etcd (Debian's `/usr/bin/etcd`, data on a tmpfs; tests/kernel/etcdlib.py)
on loopback, fills 1000 keys under a prefix, then for every candidate client,
each in its own interpreter (a venv that has it installed):

  import    CPU ms (user+system) of a fresh `python -c "import X"` minus a bare `python -c pass`
            (medians of --repeat runs, interleaved)
  read      one prefix range read of the 1000 keys, values decoded (median ms)
  claim     one create-if-absent transaction on a fresh key (median ms)

Candidates: `etcd3gw` (OpenStack; requests over etcd's JSON gRPC gateway),
`aetcd` (asyncio over gRPC), `urllib3` (plain HTTP to the same gateway) and
`http.client` (the standard library, the same gateway). python-etcd3 is not
measured: its last release (0.12.0, 2020) pins protobuf 3.6 and does not
install on Python 3.11 with current grpcio.

Run it in a throw-away network + mount namespace, as root:

    /work/shared/tools/netsandbox python3 bench/bench_store_clients.py \\
        --client etcd3gw=/tmp/venv-gw/bin/python --client aetcd=/tmp/venv-aetcd/bin/python \\
        --client urllib3=python3 --client http.client=python3
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernel"))
from etcdlib import Etcd  # noqa: E402

PREFIX = "/bench/"
KEYS = 1000

MODULE = {"etcd3gw": "etcd3gw", "aetcd": "aetcd", "urllib3": "urllib3",
          "http.client": "http.client"}

#: run inside the candidate's interpreter: argv = client, host, port, prefix, repeat
WORKER = r'''
import base64, json, statistics, sys, time
client, host, port, prefix, repeat = sys.argv[1:6]
port, repeat = int(port), int(repeat)
b64 = lambda s: base64.b64encode(s.encode()).decode()
def end(p): return p[:-1] + chr(ord(p[-1]) + 1)
if client == "etcd3gw":
    import etcd3gw
    c = etcd3gw.client(host=host, port=port)
    def read(): return [(m["key"], v) for v, m in c.get_prefix(prefix)]
    def claim(k): return c.create(k, "holder")
elif client == "aetcd":
    import asyncio, aetcd
    loop = asyncio.new_event_loop()
    async def connect(): return aetcd.Client(host=host, port=port)
    c = loop.run_until_complete(connect())
    tx = c.transactions
    def read():
        got = loop.run_until_complete(c.get_prefix(prefix.encode()))
        return [(kv.key, kv.value) for kv in got]
    def claim(k):
        ok, _ = loop.run_until_complete(c.transaction(
            compare=[tx.create(k.encode()) == 0],
            success=[tx.put(k.encode(), b"holder")], failure=[]))
        return ok
else:
    if client == "urllib3":
        import urllib3
        pool = urllib3.HTTPConnectionPool(host, port, maxsize=1)
        def post(path, body):
            r = pool.request("POST", path, body=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
            return json.loads(r.data)
    else:
        import http.client
        conn = http.client.HTTPConnection(host, port, timeout=5)
        def post(path, body):
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
    def read():
        r = post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end(prefix))})
        return [(base64.b64decode(kv["key"]), base64.b64decode(kv.get("value", "")))
                for kv in r["kvs"]]
    def claim(k):
        r = post("/v3/kv/txn", {
            "compare": [{"key": b64(k), "target": "CREATE", "create_revision": "0"}],
            "success": [{"request_put": {"key": b64(k), "value": b64("holder")}}]})
        return r.get("succeeded", False)
assert len(read()) >= 1000
reads, claims = [], []
for i in range(repeat):
    t = time.perf_counter(); read(); reads.append(time.perf_counter() - t)
for i in range(repeat):
    k = f"{prefix}claim/{client}/{i}"
    t = time.perf_counter(); ok = claim(k); claims.append(time.perf_counter() - t)
    assert ok, k
    assert not claim(k), "a second claim of one key must fail"
print(json.dumps({"read": statistics.median(reads), "claim": statistics.median(claims)}))
'''


def fill(etcd: Etcd) -> None:
    """1000 keys of ~80-byte JSON values, in transactions of 100 puts."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()
    for start in range(0, KEYS, 100):
        ops = [{"request_put": {"key": b64(f"{PREFIX}address/ov/10.50.{i // 250}.{i % 250 + 2}"),
                                "value": b64(json.dumps({"host": f"h{i % 3}", "set": "default",
                                                         "endpoint": f"s{i}-ov"}))}}
               for i in range(start, start + 100)]
        request = urllib.request.Request(f"{etcd.client_url}/v3/kv/txn",
                                         data=json.dumps({"success": ops}).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def cpu(python: str, code: str) -> float:
    """User + system CPU seconds of one fresh interpreter running `code` (steadier than
    wall time on a shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([python, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", action="append", required=True, metavar="NAME=PYTHON")
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    clients = [tuple(c.split("=", 1)) for c in args.client]
    with Etcd(port=23790, name="bench") as etcd:
        fill(etcd)
        imports: dict[str, list[float]] = {name: [] for name, _ in clients}
        bare: dict[str, list[float]] = {name: [] for name, _ in clients}
        for _ in range(args.repeat):  # interleaved, so load elsewhere hits every row alike
            for name, python in clients:
                bare[name].append(cpu(python, "pass"))
                imports[name].append(cpu(python, f"import {MODULE[name]}"))
        print(f"{'client':<12} {'import CPU ms':>14} {'read 1000 ms':>13} {'claim ms':>9}")
        for name, python in clients:
            out = subprocess.run([python, "-c", WORKER, name, etcd.address, str(etcd.port),
                                  PREFIX, str(args.repeat)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{name:<12} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            figures = json.loads(out.stdout)
            imported = (statistics.median(imports[name]) - statistics.median(bare[name])) * 1000
            print(f"{name:<12} {imported:>14.1f} {figures['read'] * 1000:>13.2f} "
                  f"{figures['claim'] * 1000:>9.2f}")


if __name__ == "__main__":
    main()
