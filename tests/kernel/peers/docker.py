"""dockerd and containerd in the test's namespaces, all their state on tmpfs."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

from peers.host import end_children, end_process, wait_for

from isolation import end_with_test

DOCKER = "/usr/bin/docker"  # Debian's docker.io client, matching its dockerd



class Dockerd:
    """containerd + dockerd in the test's namespaces, every directory under `base`.

    Started with IP forwarding off in the namespace (a fresh one has it off), as on a
    freshly booted host, so dockerd turns it on itself and sets the FORWARD policy to
    drop. Containers' cgroups go under a parent named for this test's PID."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cgroup_parent = f"cnm-peers-{os.getpid()}"
        self.containerd: subprocess.Popen[bytes] | None = None
        self.dockerd: subprocess.Popen[bytes] | None = None
        self.socket = base / "docker" / "docker.sock"
        self.ctd_socket = base / "containerd" / "containerd.sock"

    def start_containerd(self) -> None:
        ctd = self.base / "containerd"
        ctd.mkdir(parents=True, exist_ok=True)
        config = ctd / "config.toml"
        config.write_text(
            f'version = 2\nroot = "{ctd}/root"\nstate = "{ctd}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.ctd_socket}"\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{ctd}/opt"\n')
        log = open(ctd / "containerd.log", "ab")  # noqa: SIM115 (closed with the process)
        self.containerd = subprocess.Popen(["containerd", "-c", str(config)], stdout=log,
                                           stderr=log, preexec_fn=end_with_test)
        if not wait_for(self.ctd_socket.exists, 30):
            raise AssertionError(f"containerd did not start:\n{self.log('containerd')}")

    def start(self) -> None:
        if self.containerd is None:
            self.start_containerd()
        d = self.base / "docker"
        d.mkdir(parents=True, exist_ok=True)
        (d / "daemon.json").write_text("{}")
        log = open(d / "dockerd.log", "ab")  # noqa: SIM115
        self.dockerd = subprocess.Popen(
            ["dockerd", "--config-file", str(d / "daemon.json"), "--data-root", str(d / "data"),
             "--exec-root", str(d / "exec"), "--pidfile", str(d / "docker.pid"),
             "-H", f"unix://{self.socket}", "--containerd", str(self.ctd_socket),
             "--exec-opt", "native.cgroupdriver=cgroupfs",
             "--cgroup-parent", f"/{self.cgroup_parent}"],
            stdout=log, stderr=log, preexec_fn=end_with_test)
        if not wait_for(lambda: self.run("version", check=False).returncode == 0, 60, 0.2):
            raise AssertionError(f"dockerd did not start:\n{self.log('dockerd')}")

    def log(self, which: str) -> str:
        path = self.base / ("docker/dockerd.log" if which == "dockerd"
                            else "containerd/containerd.log")
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def run(self, *args: str, check: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, "-H", f"unix://{self.socket}", *args],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr}")
        return result

    def stop_dockerd(self) -> None:
        if self.dockerd is not None:
            end_process(self.dockerd.pid, timeout=30)
            self.dockerd = None

    def import_busybox(self, tag: str = "cnm-peer/busybox") -> str:
        """An image from busybox-static's /bin/busybox and a link per applet (no registry)."""
        root = self.base / "image.tar"
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        with tarfile.open(root, "w") as tar:
            tar.add("/bin/busybox", arcname="bin/busybox")
            for applet in applets:
                if applet != "busybox":
                    info = tarfile.TarInfo(f"bin/{applet}")
                    info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                    tar.addfile(info)
        self.run("import", str(root), tag)
        return tag

    def pid(self, container: str) -> int:
        return int(self.run("inspect", "-f", "{{.State.Pid}}", container).stdout)

    def address(self, container: str) -> str:
        return self.run("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}"
                        "{{end}}", container).stdout.strip()

    def stop(self) -> None:
        """Remove the containers (their shims end with them), end dockerd, containerd and
        any orphan by PID, and drop the cgroup parent the containers used."""
        if self.dockerd is not None:
            ids = self.run("ps", "-aq", check=False).stdout.split()
            if ids:
                self.run("rm", "-f", *ids, check=False)
        self.stop_dockerd()
        if self.containerd is not None:
            end_process(self.containerd.pid, timeout=30)
            self.containerd = None
        end_children()
        root = Path("/sys/fs/cgroup")  # cgroup v2: root/parent; v1: root/<controller>/parent
        for parent in [root / self.cgroup_parent,
                       *(c / self.cgroup_parent for c in root.iterdir() if c.is_dir())]:
            if parent.is_dir():
                for leftover in sorted(parent.rglob("*"), reverse=True):
                    if leftover.is_dir():
                        leftover.rmdir()
                parent.rmdir()
