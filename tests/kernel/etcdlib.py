"""A real etcd (Debian's `/usr/bin/etcd`) for kernel tests, and `etcdctl` as the observer.

`Etcd` starts one single-member etcd inside the calling test's network and
mount namespace, listening on `address:port` (loopback by default), with its
data directory on a tmpfs of its own under `/var/lib/cnm` (itself the test's
private tmpfs), waits until `/health` answers, and is stopped by its PID.
`make_ca` writes a self-signed CA and certificates signed by it (openssl), for
the TLS tests. `etcdctl` is the independent observer: it never uses cnm's code.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from isolation import end_with_test

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"


@dataclass(frozen=True)
class Tls:
    """PEM files: the CA, and a certificate + key signed by it."""

    ca: str
    cert: str
    key: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str, ip: str) -> Tls:
    """A fresh self-signed CA in `directory`, and a server/client certificate for `ip`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / f"{name}-ca.key", directory / f"{name}-ca.pem"
    key, csr, cert = (directory / f"{name}.key", directory / f"{name}.csr",
                      directory / f"{name}.pem")
    ext = directory / f"{name}.ext"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", f"/CN={name} test CA",
             # Python 3.13 verifies strictly (Debian 13): a CA without key usage is refused
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    ext.write_text(f"subjectAltName=IP:{ip},IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return Tls(ca=str(ca), cert=str(cert), key=str(key))


class Etcd:
    """One etcd member started in this namespace; `stop()` ends it by PID."""

    def __init__(self, address: str = "127.0.0.1", port: int = 2379, *,
                 tls: Tls | None = None, name: str = "cnm-test",
                 state_root: str = "/var/lib/cnm") -> None:
        self.address, self.port, self.tls, self.name = address, port, tls, name
        scheme = "https" if tls else "http"
        host = f"[{address}]" if ":" in address else address
        self.client_url = f"{scheme}://{host}:{port}"
        self.peer_url = f"http://{host}:{port + 1}"
        self.store_url = f"etcd://{host}:{port}"
        self.data_root = Path(state_root) / f"etcd-{name}-{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(state_root) / f"etcd-{name}-{port}.log"

    def start(self, timeout: float = 20.0) -> Etcd:
        """Start etcd (data on a fresh tmpfs) and wait until it is healthy; running: no-op."""
        if self.process is not None and self.process.poll() is None:
            return self
        if not os.path.ismount(self.data_root):
            self.data_root.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "cnm-etcd",
                            str(self.data_root)], check=True)
        args = [ETCD, "--name", self.name, "--data-dir", str(self.data_root / "data"),
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"{self.name}={self.peer_url}",
                "--log-outputs", str(self.log_path), "--logger", "zap"]
        if self.tls:
            args += ["--cert-file", self.tls.cert, "--key-file", self.tls.key,
                     "--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=end_with_test)
        self.wait_healthy(timeout)
        return self

    def _health(self) -> bool:
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls.ca)
            context.load_cert_chain(self.tls.cert, self.tls.key)
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1,
                                        context=context) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"etcd exited ({self.process.returncode}):\n{self.log()}")
            if self._health():
                return
            time.sleep(0.05)
        raise AssertionError(f"etcd not healthy within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End etcd by its PID (SIGKILL to simulate a crash); its data stays for a restart."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def destroy(self) -> None:
        """Stop and drop the data (the tmpfs)."""
        self.stop()
        if os.path.ismount(self.data_root):
            subprocess.run(["umount", str(self.data_root)], check=True)

    def __enter__(self) -> Etcd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # --- the independent observer ------------------------------------------------

    def etcdctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ETCDCTL_API": "3"}
        tls = []
        if self.tls:
            tls = [f"--cacert={self.tls.ca}", f"--cert={self.tls.cert}", f"--key={self.tls.key}"]
        return subprocess.run([ETCDCTL, f"--endpoints={self.client_url}", *tls, *args],
                              capture_output=True, text=True, check=check, env=env)

    def revision(self) -> int:
        """The store's current revision, as etcdctl reports it."""
        status = json.loads(self.etcdctl("endpoint", "status", "-w", "json").stdout)
        return int(status[0]["Status"]["header"]["revision"])

    def stored(self, prefix: str = "/cnm/v1/") -> dict[str, str]:
        """Every key under `prefix` and its value, as etcdctl reads them."""
        out = self.etcdctl("get", prefix, "--prefix").stdout.splitlines()
        return dict(zip(out[0::2], out[1::2], strict=True))
