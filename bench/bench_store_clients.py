#!/usr/bin/env python3
"""Which etcd v3 client the cluster store uses, by measurement.

Starts one etcd (Debian's `/usr/bin/etcd`, data on a tmpfs; tests/kernel/etcdlib.py)
on loopback, fills 1000 keys under a prefix, then for every candidate client,
each in its own interpreter (a venv that has it installed):

  import    CPU ms (user+system) of a fresh `python -c "import X"` minus a bare `python -c pass`
            (medians of --repeat runs, interleaved)
  read      one prefix range read of the 1000 keys, values decoded (median wall ms,
            and the client process's own CPU ms: etcd's side of the work excluded)
  claim     one create-if-absent transaction on a fresh key (median ms)

`cnm` is cnm's own `ClusterStore` (urllib3), its read decoded into a
`ClusterView`, its claim one of its address transactions.

Candidates: `etcd3gw` (OpenStack; requests over etcd's JSON gRPC gateway),
`aetcd` (asyncio over gRPC), `urllib3` (plain HTTP to the same gateway) and
`http.client` (the standard library, the same gateway). python-etcd3 is not
measured: its last release (0.12.0, 2020) pins protobuf 3.6 and does not
install on Python 3.11 with current grpcio.

Run it in a throw-away network + mount namespace, as root (etcd listens on
its loopback):

    unshare --net --mount sh -c 'ip link set lo up; \\
        for d in /run/netns /etc/netns /run/cnm /var/lib/cnm; do mount -t tmpfs none $d; done; \\
        exec python3 bench/bench_store_clients.py "$@"' - \\
        --client etcd3gw=/tmp/venv-gw/bin/python --client aetcd=/tmp/venv-aetcd/bin/python \\
        --client urllib3=python3 --client http.client=python3 --client cnm=python3
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import urllib.request
from pathlib import Path

from common import use_test_helpers

REPO = Path(__file__).resolve().parents[1]
use_test_helpers()
from etcdlib import Etcd  # noqa: E402

PREFIX = "/bench/"
KEYS = 1000

MODULE = {"cnm": "reconciler.fleet.store, urllib3", "etcd3gw": "etcd3gw", "aetcd": "aetcd",
          "urllib3": "urllib3", "http.client": "http.client"}

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
elif client == "cnm":
    import itertools, zlib
    from reconciler.fleet.records import Holder, parse_store_url
    from reconciler.fleet.store import ClusterStore
    c = ClusterStore.open(parse_store_url(f"etcd://{host}:{port}", prefix=prefix))
    calls = itertools.count()
    def read(): return list(c.read().addresses)  # decoded into a ClusterView
    def claim(k):  # an address of its own per key, another holder per call
        n = zlib.crc32(k.encode()) & 0xFFFFFF
        address = f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
        return c.claim_address("ov", address, Holder(f"h{next(calls)}", "default", "e"))
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
reads, read_cpu, claims = [], [], []
for i in range(repeat):
    t, cpu0 = time.perf_counter(), time.process_time()
    read()
    reads.append(time.perf_counter() - t); read_cpu.append(time.process_time() - cpu0)
for i in range(repeat):
    k = f"{prefix}claim/{client}/{time.time_ns()}/{i}"
    t = time.perf_counter(); ok = claim(k); claims.append(time.perf_counter() - t)
    assert ok, k
    assert not claim(k), "a second claim of one key must fail"
print(json.dumps({"read": reads, "read_cpu": read_cpu, "claim": claims}))
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
    subprocess.run([python, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", action="append", required=True, metavar="NAME=PYTHON")
    parser.add_argument("--repeat", type=int, default=21,
                        help="imports per client; reads and claims per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved worker runs")
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
        samples: dict[str, dict[str, list[float]]] = {
            name: {"read": [], "read_cpu": [], "claim": []} for name, _ in clients}
        failed: dict[str, str] = {}
        for _ in range(args.rounds):  # interleaved rounds, as for the imports
            for name, python in clients:
                out = subprocess.run([python, "-c", WORKER, name, etcd.address, str(etcd.port),
                                      PREFIX, str(args.repeat)], capture_output=True, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
                if out.returncode != 0:
                    failed[name] = out.stderr.strip().splitlines()[-1]
                    continue
                for key, values in json.loads(out.stdout).items():
                    samples[name][key] += values
        print(f"{'client':<12} {'import CPU ms':>14} {'read 1000 ms':>13} "
              f"{'read CPU ms':>12} {'claim ms':>9}")
        for name, _ in clients:
            imported = (statistics.median(imports[name]) - statistics.median(bare[name])) * 1000
            if name in failed:
                print(f"{name:<12} {imported:>14.1f} failed: {failed[name]}")
                continue
            got = {key: statistics.median(values) * 1000 for key, values in samples[name].items()}
            print(f"{name:<12} {imported:>14.1f} {got['read']:>13.2f} {got['read_cpu']:>12.2f} "
                  f"{got['claim']:>9.2f}")

if __name__ == "__main__":
    main()
