"""The real peers (dockerd + containerd, the CNI reference plugins, netavark) next to cnm.

Shared by the peer tests and bench/bench_peers.py. Everything here runs inside
the test's own network + mount namespace (tests/isolation.py): `private_dirs`
puts tmpfs on every directory a peer writes to (so nothing reaches the
machine's files), every daemon is started here and ended here by its PID, and
the test process becomes a child subreaper so that processes the daemons
detach (containerd's shims) are its own children and are ended by PID too.

The views (`side`) are made with iproute2 and nft only, never with cnm's own
code, so a verdict "the other side did not change" does not depend on cnm.

host (tmpfs, processes by PID, waits, the outside host), traffic (TCP both ways),
views (each side's objects), cnm_set (cnm's side), cni, netavark, docker (the peers).
"""
