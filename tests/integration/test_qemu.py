"""Real QEMU guests on vhost-user vnics: Debian's kernel and its virtio-net driver, a busybox
initramfs, under TCG (nested KVM cannot boot here). Butterfly as the vhost-user server with the
README's QEMU command line (reconnect=1), and as the client (--type vhost-client, QEMU server=on).
Then butterflyd is killed (kill -9) and stopped cleanly under the guests, and restarted from its
journal: the guests, untouched, talk again as their groups say.

The guest's kernel and busybox come from Debian packages fetched with `apt-get download` into a
cache in the build folder, so a fresh machine needs only scripts/install-deps. Without the
packages (no mirror) the test fails and says why: a silent skip would hide that nothing ran."""
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BUILD_DIR, DaemonTestCase

QEMU = "/usr/bin/qemu-system-x86_64"
GUEST_CACHE = os.path.join(BUILD_DIR, "qemu-guest")
# Debian 12's kernel builds these as modules; whatever a kernel has built in is simply absent.
VIRTIO_NET_MODULES = ("virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci "
                      "failover net_failover virtio_net").split()

# The guest's /init: loads virtio-net, takes its address from the kernel command line, says
# @@READY on the console and then runs the test's commands from the serial port (echo off), one
# per line as "N command": each in its own `sh -c`, followed by "@@RC<N>=<exit status>". An
# interactive busybox shell is not used: it exited now and then when a background job (an nc
# listener) changed state while it waited for input, and the start of the next command, already
# read by the dying shell, was lost. Here the reading shell has no background children: a
# listener started with `&` outlives its `sh -c` and belongs to init.
GUEST_INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s
for m in %s; do
  [ -f /modules/$m.ko ] && insmod /modules/$m.ko
done
for word in $(cat /proc/cmdline); do
  case $word in bf.ip=*) address=${word#bf.ip=} ;; esac
done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add $address/24 dev eth0
echo "@@READY $(cat /sys/class/net/eth0/address) $address"
while true; do
  stty -echo < /dev/ttyS0
  setsid cttyhack sh -c 'while read -r n line; do sh -c "$line" 2>&1; echo "@@RC$n=$?"; done'
done
""" % " ".join(VIRTIO_NET_MODULES)


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def newest_debian_kernel_package():
    search = lambda: sorted(
        (line.split()[0] for line in run(["apt-cache", "search", "--names-only",
                                          r"^linux-image-6\.1\.0-[0-9]+-amd64$"]).stdout.splitlines()),
        key=lambda name: int(name.split("-")[3]))
    names = search()
    if not names:
        run(["apt-get", "update", "-qq"])
        names = search()
    if not names:
        raise AssertionError("no linux-image-6.1.0-N-amd64 package known to apt (apt-cache search "
                             "found none, even after apt-get update): the QEMU guests need Debian's kernel")
    return names[-1]


def apt_download(package, folder):
    result = run(["apt-get", "download", package], cwd=folder)
    debs = glob.glob(os.path.join(folder, package + "_*.deb"))
    if result.returncode != 0 or not debs:
        raise AssertionError("apt-get download %s failed (is a Debian mirror reachable?): the QEMU "
                             "guests are built from it\n%s%s" % (package, result.stdout, result.stderr))
    return debs[0]


def guest_images():
    """(vmlinuz, initrd.gz) for the newest Debian 6.1 kernel, built once into GUEST_CACHE."""
    package = newest_debian_kernel_package()
    # The init script is part of the key: a cached initrd with an older /init is never reused.
    init_digest = hashlib.sha256(GUEST_INIT.encode()).hexdigest()[:12]
    folder = os.path.join(GUEST_CACHE, "%s-init-%s" % (package, init_digest))
    kernel, initrd = os.path.join(folder, "vmlinuz"), os.path.join(folder, "initrd.gz")
    os.makedirs(GUEST_CACHE, exist_ok=True)
    with open(os.path.join(GUEST_CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs on one build folder build it once
        if os.path.exists(initrd):
            return kernel, initrd
        with tempfile.TemporaryDirectory(dir=GUEST_CACHE) as work:
            os.chmod(work, 0o755)  # apt-get download runs as _apt where it can
            for deb in (apt_download(package, work), apt_download("busybox-static", work)):
                subprocess.run(["dpkg-deb", "-x", deb, os.path.join(work, "root")], check=True)
            root = os.path.join(work, "root")
            initramfs = os.path.join(work, "initramfs")
            os.makedirs(os.path.join(initramfs, "bin"))
            os.makedirs(os.path.join(initramfs, "modules"))
            shutil.copy(os.path.join(root, "bin", "busybox"), os.path.join(initramfs, "bin", "busybox"))
            module_files = glob.glob(os.path.join(root, "lib", "modules", "*", "kernel", "**", "*.ko*"),
                                     recursive=True)
            for name in VIRTIO_NET_MODULES:
                found = [f for f in module_files if os.path.basename(f) in (name + ".ko", name + ".ko.xz")]
                if not found:
                    continue  # built into this kernel
                target = os.path.join(initramfs, "modules", name + ".ko")
                if found[0].endswith(".xz"):
                    with open(target, "wb") as out:
                        subprocess.run(["xz", "-dc", found[0]], stdout=out, check=True)
                else:
                    shutil.copy(found[0], target)
            with open(os.path.join(initramfs, "init"), "w") as f:
                f.write(GUEST_INIT)
            os.chmod(os.path.join(initramfs, "init"), 0o755)
            staged = os.path.join(work, "staged")
            os.makedirs(staged)
            shutil.copy(glob.glob(os.path.join(root, "boot", "vmlinuz-*"))[0], os.path.join(staged, "vmlinuz"))
            subprocess.run("find . | cpio -o -H newc --quiet | gzip -1 > %s" % os.path.join(staged, "initrd.gz"),
                           shell=True, cwd=initramfs, check=True)
            os.rename(staged, folder)
        return kernel, initrd


class Guest:
    """One QEMU guest, driven through its serial console (QEMU's stdin and stdout)."""

    def __init__(self, testcase, name, images, mac, address, chardev, reboots=False):
        self.name, self.mac = name, mac
        command = [QEMU, "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "256", "-smp", "1",
                   "-display", "none", "-monitor", "none", "-serial", "stdio",
                   "-kernel", images[0], "-initrd", images[1],
                   "-append", "console=ttyS0 quiet panic=-1 mitigations=off no_timer_check bf.ip=" + address,
                   "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-numa", "node,memdev=mem",
                   "-chardev", chardev,
                   # vectors=0: QEMU 7.2 under TCG crashes when vhost-user starts with MSI-X.
                   "-netdev", "type=vhost-user,id=n0,chardev=c0,vhostforce=on",
                   "-device", "virtio-net-pci,netdev=n0,mac=%s,vectors=0" % mac]
        if not reboots:
            command.append("-no-reboot")  # a panic ends the test at once instead of looping
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.output = ""
        self.output_lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.commands = 0
        testcase.addCleanup(self.stop)

    def _read(self):
        while True:
            chunk = self.process.stdout.read1(4096)
            if not chunk:
                return
            with self.output_lock:
                self.output += chunk.decode(errors="replace").replace("\r", "")

    def printed(self):
        with self.output_lock:
            return self.output

    def wait_printed(self, pattern, timeout, start=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            match = re.compile(pattern, re.M).search(self.printed(), start)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("guest %s: no /%s/ within %ss (QEMU %s); its console:\n%s" % (
            self.name, pattern, timeout, "exited %s" % self.process.returncode
            if self.process.poll() is not None else "running", self.printed()[-3000:]))

    def wait_booted(self, boots=1, timeout=240):
        """Waits for the guest's boots-th @@READY (each boot prints one)."""
        deadline = time.time() + timeout
        while self.printed().count("@@READY") < boots:
            self.wait_printed("@@READY", max(deadline - time.time(), 0.1))
            if self.printed().count("@@READY") < boots:
                time.sleep(0.1)
                if time.time() > deadline:
                    raise AssertionError("guest %s booted %d times, not %d:\n%s" % (
                        self.name, self.printed().count("@@READY"), boots, self.printed()[-3000:]))
        return self.printed().count("@@READY")

    def send(self, line):
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()

    def sh(self, command, timeout=60):
        """Runs a shell command in the guest; returns (exit status, what it printed)."""
        self.commands += 1
        marker = "@@RC%d=" % self.commands
        start = len(self.printed())
        if "\n" in command:
            raise ValueError("one guest command is one line: %r" % command)
        self.send("%d %s" % (self.commands, command))
        match = self.wait_printed(re.escape(marker) + r"(\d+)$", timeout, start)
        return int(match.group(1)), self.printed()[start:match.start()]

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if not pipe.closed:
                pipe.close()


class QemuGuestTest(DaemonTestCase):
    daemon_args = None  # started on a state journal below, to be restarted from it
    args = ("--dpdk-args", "--no-pci", "--workers", "1")

    def setUp(self):
        self.images = guest_images()  # before the daemon: a missing kernel fails fast
        super().setUp()
        self.state_file = os.path.join(self.tmp.name, "state.journal")
        self.daemon = self.start_daemon(args=self.args, state_file=self.state_file)

    def links(self):
        return {n["id"]: n["link"] for n in json.loads(self.ok("--json", "nic", "details"))}

    def wait_for(self, condition, timeout=60, what=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.1)
        self.fail("timed out waiting for %s" % (what or condition))

    def ping(self, guest, address):
        status, printed = guest.sh("ping -c 1 -W 3 %s" % address)
        return status == 0

    def test_guests_talk_as_the_groups_say_never_across_vnis_after_a_reboot_and_after_butterflyd_restarts(self):
        # The README's example, plus ICMP: TCP port 80 and ping are allowed, nothing else.
        self.ok("sg", "add", "sg-web")
        self.ok("sg", "rule", "add", "sg-web", "--ip-proto", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
        self.ok("sg", "rule", "add", "sg-web", "--ip-proto", "icmp", "--cidr", "0.0.0.0/0")
        # a and b (VNI 42): Butterfly the server for a (README's QEMU line), the client for b.
        # c and d (VNI 51): d has a's address; c's ping to it must reach d, never a.
        client_socket = os.path.join(self.tmp.name, "qemu-b.sock")
        guests = {"a": ("52:54:00:00:00:01", 42, "198.18.0.1"), "b": ("52:54:00:00:00:02", 42, "198.18.0.2"),
                  "c": ("52:54:00:00:00:03", 51, "198.18.0.3"), "d": ("52:54:00:00:00:04", 51, "198.18.0.1")}
        chardevs = {}
        for name, (mac, vni, address) in guests.items():
            add = ["nic", "add", "--id", "vnic_" + name, "--mac", mac, "--vni", str(vni), "--ip", address,
                   "--sg", "sg-web"]
            if name == "b":
                chardevs[name] = "socket,id=c0,path=%s,server=on,wait=off" % client_socket
            else:
                socket_path = self.ok(*add).strip()
                self.assertEqual(socket_path, os.path.join(self.daemon.socket_dir, "qemu-vhost-vnic_" + name))
                chardevs[name] = "socket,id=c0,path=%s,reconnect=1" % socket_path
        vms = {name: Guest(self, name, self.images, guests[name][0], guests[name][2], chardevs[name],
                           reboots=name in "ab")
               for name in guests}
        self.wait_for(lambda: os.path.exists(client_socket), what="QEMU's server socket")
        self.ok("nic", "add", "--id", "vnic_b", "--mac", guests["b"][0], "--vni", "42", "--ip", "198.18.0.2",
                "--sg", "sg-web", "--type", "vhost-client", "--path", client_socket)
        booted = time.time()
        for vm in vms.values():
            vm.wait_booted()
        self.wait_for(lambda: set(self.links().values()) == {"connected"}, what="every vnic connected")
        print("four guests booted and connected in %.1f s" % (time.time() - booted))

        # ICMP both ways between the server-mode and the client-mode guest.
        self.assertTrue(self.ping(vms["a"], "198.18.0.2"), "a pings b")
        self.assertTrue(self.ping(vms["b"], "198.18.0.1"), "b pings a")
        # TCP port 80 is allowed: the bytes arrive.
        vms["b"].sh("setsid nc -l -p 80 </dev/null >/tmp/got80 2>&1 &")
        vms["b"].sh("setsid nc -l -p 81 </dev/null >/tmp/got81 2>&1 &")
        self.assertEqual(vms["a"].sh("echo hello-port-80 | nc -w 3 198.18.0.2 80")[0], 0)
        self.wait_for(lambda: "hello-port-80" in vms["b"].sh("cat /tmp/got80")[1], timeout=20,
                      what="b's listener on port 80 to get a's bytes")
        # TCP port 81 is not in the group: refused by Butterfly although b listens.
        self.assertNotEqual(vms["a"].sh("echo hello-port-81 | nc -w 3 198.18.0.2 81")[0], 0,
                            "a connected to b's port 81, which no rule allows")
        self.assertEqual(vms["b"].sh("cat /tmp/got81")[1].strip(), "")
        self.assertGreater(json.loads(self.ok("--json", "nic", "stats", "vnic_b"))["drops"]["filter"], 0)

        # VNI isolation: c's ping to 198.18.0.1 is answered by d (same address, VNI 51), never by a.
        self.assertTrue(self.ping(vms["c"], "198.18.0.1"), "c pings d")
        self.assertIn(guests["d"][0], vms["c"].sh("ip neigh show 198.18.0.1")[1], "the answer came from d")
        self.assertNotIn(guests["a"][0], vms["c"].sh("ip neigh")[1], "c heard from a across VNIs")
        self.assertFalse(self.ping(vms["a"], "198.18.0.3"), "a reached c across VNIs")
        self.assertFalse(self.ping(vms["c"], "198.18.0.2"), "c reached b across VNIs")
        self.assertNotIn(guests["c"][0], vms["a"].sh("ip neigh")[1], "a heard from c across VNIs")

        # Both VNI 42 guests reboot (a real reset: virtio is set up again): their links go down,
        # come back, and traffic flows again.
        for name in "ab":
            vms[name].send("0 reboot -f")
        seen = {"vnic_a": set(), "vnic_b": set()}

        def links_went_down_and_came_back():
            links = self.links()
            for nic in seen:
                seen[nic].add(links[nic])
            return (all(vms[name].printed().count("@@READY") >= 2 for name in "ab")
                    and all("connected" in states and len(states) > 1 for states in seen.values())
                    and links["vnic_a"] == links["vnic_b"] == "connected")
        self.wait_for(links_went_down_and_came_back, timeout=240, what="a and b back after their reboot")
        print("links seen during the reboot: %s" % {nic: sorted(states) for nic, states in seen.items()})
        self.assertTrue(self.ping(vms["a"], "198.18.0.2"), "a pings b after the reboot")
        self.assertTrue(self.ping(vms["b"], "198.18.0.1"), "b pings a after the reboot")
        vms["b"].sh("setsid nc -l -p 80 </dev/null >/tmp/again80 2>&1 &")
        self.assertEqual(vms["a"].sh("echo hello-again | nc -w 3 198.18.0.2 80")[0], 0)
        self.wait_for(lambda: "hello-again" in vms["b"].sh("cat /tmp/again80")[1], timeout=20,
                      what="b's listener on port 80 after the reboot")
        self.assertIsNone(self.daemon.process.poll())

        # butterflyd killed (kill -9), then stopped cleanly, under the guests: it comes back from its
        # journal, QEMU reconnects to the server-mode sockets (reconnect=1), Butterfly to QEMU's
        # (client mode), and nothing is done in any guest.
        before = self.dump()
        vms["b"].sh("setsid nc -l -p 81 </dev/null >/tmp/after81 2>&1 &")
        # a pings b five times a second throughout: the switch goes away under traffic.
        vms["a"].sh("setsid ping -i 0.2 198.18.0.2 </dev/null >/tmp/background-ping 2>&1 &")
        replies = lambda: int(vms["a"].sh("grep -c 'bytes from' /tmp/background-ping")[1].split()[-1])
        self.wait_for(lambda: replies() > 0, timeout=20, what="a's background ping to be answered")
        for how in ("kill -9", "clean stop"):
            answered = replies()
            stopped = self.restart_daemon(how, self.args, self.state_file)
            self.wait_for(lambda: set(self.links().values()) == {"connected"}, timeout=120,
                          what="every guest's link back after the %s" % how)
            self.assertEqual(self.dump(), before, "the state after the %s is the state before" % how)
            self.wait_for(lambda: self.ping(vms["a"], "198.18.0.2"), timeout=60,
                          what="a to ping b after the %s" % how)
            print("%s: a pings b %.1f s after the stop" % (how, time.monotonic() - stopped))
            self.wait_for(lambda: replies() > answered, timeout=30,
                          what="a's background ping to be answered again after the %s" % how)
            self.assertTrue(self.ping(vms["b"], "198.18.0.1"), "b pings a after the %s" % how)
            self.assertTrue(self.ping(vms["c"], "198.18.0.1"), "c pings d after the %s" % how)
        # The groups came back too: port 81 is still refused, VNIs still apart.
        self.assertNotEqual(vms["a"].sh("echo after-81 | nc -w 3 198.18.0.2 81")[0], 0)
        self.assertEqual(vms["b"].sh("cat /tmp/after81")[1].strip(), "")
        self.assertFalse(self.ping(vms["a"], "198.18.0.3"), "a reached c across VNIs after the restarts")
        for vm in vms.values():
            vm.stop()
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
