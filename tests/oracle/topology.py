"""The two networks the oracle drives with the same frames.

Butterfly: one butterflyd (1 worker), a TAP vnic per local VM, each TAP moved into the VM's
namespace. The remote VM lives on another host: a namespace whose Linux VXLAN device (VNI 77) is
bridged to the VM and reaches butterflyd's underlay (DPDK net_af_packet on a veth):

    remote VM ns [rv] --veth-- [rb] remote host ns (bridge + vxlan77, 198.19.254.2) [u1] --veth-- [u0] butterflyd

In the kernel reference the remote VM hangs on the switch bridge with no firewall of its own: in
both networks only the local VM's group judges what passes between them.

Kernel reference, modelled on OpenStack's hybrid iptables firewall (a Linux bridge per port
between the VM and the switch, conntrack on that bridge):

    VM ns [kv] --veth-- [fv] firewall ns (bridge, br_netfilter, nftables inet) [fu] --veth-- [su] switch ns (bridge)

Each VM has its own firewall namespace, so its own conntrack table: a packet from A to B is
tracked by A's firewall (egress chain) and then by B's (ingress chain), as Butterfly tracks it at
A's vnic and then at B's. One shared table would not do: a flow B never accepted would still be
`established` for B's replies (Butterfly's per-vnic tables, like OpenStack's per-port zones,
keep them apart). In the firewall namespace br_netfilter hands bridged IP frames to the inet
hooks; filtering is done in prerouting (after conntrack, priority 0) where the input interface is
still the bridge port, which says the direction: from fv = the VM's egress, from fu = its ingress.
The VM namespaces have no addresses and IPv6 disabled: their kernels never answer a frame, so
the only traffic is the oracle's."""
import ctypes
import os
import socket
import subprocess

import harness

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def run(command, check=True, input_text=None):
    result = subprocess.run(command, capture_output=True, text=True, input=input_text, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed: %s%s" % (" ".join(command), result.stdout, result.stderr))
    return result


def packet_socket(namespace, interface):
    """An AF_PACKET socket on `interface` of `namespace`, made by entering the namespace (this
    process's thread goes back to its own namespace before returning)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/var/run/netns/" + namespace, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + namespace)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((interface, 0))
            sock.setblocking(False)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    return sock


def drain(sock):
    """Frames received (not sent) by the socket since the last call."""
    frames = []
    while True:
        try:
            data, address = sock.recvfrom(65536)
        except BlockingIOError:
            return frames
        if address[2] != PACKET_OUTGOING:
            frames.append(data)


class Lab:
    """Namespaces, links, daemon: everything is recorded when made and removed by cleanup()."""

    def __init__(self, workdir):
        self.tag = "o%05d" % (os.getpid() % 100000)
        self.workdir = workdir
        self.namespaces = []
        self.links = []
        self.daemon = None

    def name(self, suffix):
        return (self.tag + suffix)[:15]

    def netns(self, suffix):
        name = self.name(suffix)
        # Recorded first: a signal between the two lines must not leave it behind.
        self.namespaces.append(name)
        run(["ip", "netns", "add", name])
        for key in ("all", "default"):
            self.ns(name, ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key])
        self.ns(name, ["ip", "link", "set", "lo", "up"])
        return name

    def ns(self, namespace, command, check=True, input_text=None):
        return run(["ip", "netns", "exec", namespace] + command, check=check, input_text=input_text)

    def veth(self, a, b):
        a, b = self.name(a), self.name(b)
        self.links.append(a)
        run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        return a, b

    def move(self, link, namespace, mac=None):
        run(["ip", "link", "set", link, "netns", namespace])
        self.ns(namespace, ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % link], check=False)
        if mac:
            self.ns(namespace, ["ip", "link", "set", link, "address", mac])
        self.ns(namespace, ["ip", "link", "set", link, "up"])

    def cleanup(self):
        if self.daemon:
            self.daemon.stop()
        for namespace in self.namespaces:
            run(["ip", "netns", "del", namespace], check=False)
        for link in self.links:
            run(["ip", "link", "del", link], check=False)


VNI = 77
LOCAL_VTEP, REMOTE_VTEP = "198.19.254.1", "198.19.254.2"
# Room on the underlay for a full 1514-byte frame plus VXLAN's 50 bytes (on the Linux side: the
# af_packet port keeps butterflyd's default underlay MTU, 1500, and the oracle's frames fit it).
UNDERLAY_MTU = 1600


class ButterflySide:
    """The local VMs as TAP vnics of one butterflyd, in one VNI; the remote VMs behind a Linux
    VXLAN device on its underlay."""

    def __init__(self, lab, vms):
        self.lab = lab
        underlay, remote_uplink = lab.veth("u0", "u1")
        run(["ip", "link", "set", underlay, "mtu", str(UNDERLAY_MTU), "up"])
        # A table and a vnic quota that the long run's flows (kept for hours once established,
        # as Linux keeps them) never fill: a full table would drop new flows Linux lets through.
        lab.daemon = harness.Daemon(lab.workdir, args=[
            # A deep ring: a round's burst from the remote host must never overflow it (a frame
            # lost there would look like a verdict).
            "--dpdk-args", "--no-pci --vdev=net_af_packet0,iface=%s,framecnt=4096" % underlay, "-i", LOCAL_VTEP,
            "--workers", "1", "--conntrack-entries", "1048576",
            "--conntrack-vnic-quota", "1048576"], name="oracle-butterflyd")
        lab.daemon.start()
        self.endpoint = lab.daemon.endpoint
        self.sockets = []
        self.nics = []
        remote_host = None
        for index, vm in enumerate(vms):
            if vm.remote:
                if remote_host is None:
                    remote_host = self.remote_host(remote_uplink)
                self.sockets.append(self.remote_vm(index, vm, remote_host))
                continue
            nic = lab.name("b%d" % index)
            self.cli(["nic", "add", "--id", nic, "--mac", vm.mac, "--vni", str(VNI), "--ip", vm.v4[0],
                      "--type", "tap"])
            namespace = lab.netns("B%d" % index)
            lab.move(nic, namespace)
            self.nics.append(nic)
            self.sockets.append(packet_socket(namespace, nic))
        # Floods go to the remote host (head-end replication) and its VMs' MACs are known: no
        # frame depends on what the switch happened to learn.
        self.cli(["vni", "peers", str(VNI), REMOTE_VTEP])
        for vm in vms:
            if vm.remote:
                self.cli(["fdb", "add", "--vni", str(VNI), "--mac", vm.mac, "--vtep", REMOTE_VTEP])

    def remote_host(self, uplink):
        lab = self.lab
        host = lab.netns("R")
        lab.move(uplink, host)
        lab.ns(host, ["ip", "link", "set", uplink, "mtu", str(UNDERLAY_MTU)])
        lab.ns(host, ["ip", "addr", "add", REMOTE_VTEP + "/24", "dev", uplink])
        lab.ns(host, ["ip", "link", "add", "vx", "type", "vxlan", "id", str(VNI), "local", REMOTE_VTEP,
                      "remote", LOCAL_VTEP, "dstport", "4789", "dev", uplink])
        lab.ns(host, ["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
        lab.ns(host, ["ip", "link", "set", "vx", "master", "br0"])
        for link in ("vx", "br0"):
            lab.ns(host, ["ip", "link", "set", link, "up"])
        return host

    def remote_vm(self, index, vm, host):
        lab = self.lab
        vm_link, host_link = lab.veth("rv%d" % index, "rb%d" % index)
        lab.move(vm_link, lab.netns("B%d" % index), vm.mac)
        lab.move(host_link, host)
        lab.ns(host, ["ip", "link", "set", host_link, "master", "br0"])
        return packet_socket(self.lab.name("B%d" % index), vm_link)

    def cli(self, args):
        result = harness.cli(args, self.endpoint, timeout=20)
        if result.returncode != 0:
            raise RuntimeError("butterfly %s: %s%s" % (" ".join(args), result.stdout, result.stderr))
        return result.stdout

    def configure(self, config):
        """Replaces the SGs and the vnics' addresses and SG lists with the seed's, in one batch."""
        commands = []
        for sg in config.sg_ids_ever:
            commands.append(["sg", "del", sg])
        for sg in config.sgs:
            commands.append(["sg", "add", sg.id])
            for rule in sg.rules:
                commands.append(rule.cli(sg.id))
            if sg.members:
                commands.append(["sg", "member", "add", sg.id] + sg.members)
        for nic, vm in zip(self.nics, config.local_vms()):
            command = ["nic", "update", "--id", nic]
            for address in vm.v4 + vm.v6:
                command += ["--ip", address]
            commands.append(command)
            commands.append(["nic", "sg", "set", nic] + vm.sgs)
        batch = []
        for command in commands:
            batch += command + ["+"]
        self.cli(batch[:-1])


class KernelSide:
    """The same VMs behind per-VM firewall bridges (nftables + conntrack) on a switch bridge."""

    def __init__(self, lab, vms):
        self.lab = lab
        self.firewalls = []
        self.sockets = []
        switch = lab.netns("S")
        self.bridge_sysctls(switch, 0)
        lab.ns(switch, ["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
        lab.ns(switch, ["ip", "link", "set", "br0", "up"])
        for index, vm in enumerate(vms):
            vm_ns = lab.netns("K%d" % index)
            if vm.remote:
                # On the switch with no firewall: only the local VMs' groups judge its traffic.
                vm_link, switch_link = lab.veth("kv%d" % index, "su%d" % index)
                lab.move(vm_link, vm_ns, vm.mac)
                lab.move(switch_link, switch)
                lab.ns(switch, ["ip", "link", "set", switch_link, "master", "br0"])
                self.sockets.append(packet_socket(vm_ns, vm_link))
                continue
            firewall = lab.netns("F%d" % index)
            self.bridge_sysctls(firewall, 1)
            vm_link, port_link = lab.veth("kv%d" % index, "fv%d" % index)
            up_link, switch_link = lab.veth("fu%d" % index, "su%d" % index)
            lab.move(vm_link, vm_ns, vm.mac)
            lab.ns(firewall, ["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
            lab.move(port_link, firewall)
            lab.move(up_link, firewall)
            lab.move(switch_link, switch)
            lab.ns(firewall, ["ip", "link", "set", port_link, "master", "br0"])
            lab.ns(firewall, ["ip", "link", "set", up_link, "master", "br0"])
            lab.ns(firewall, ["ip", "link", "set", "br0", "up"])
            lab.ns(switch, ["ip", "link", "set", switch_link, "master", "br0"])
            self.firewalls.append((firewall, port_link, up_link))
            self.sockets.append(packet_socket(vm_ns, vm_link))
            self.switch_link = switch_link
        # Static forwarding entries: a unicast frame goes to its VM only, never flooded past
        # other VMs' firewalls (Butterfly knows its local MACs; nor does it flood them).
        for index, vm in enumerate(vms):
            lab.ns(switch, ["bridge", "fdb", "replace", vm.mac, "dev", self.lab.name("su%d" % index),
                            "master", "static"])
            for other, (firewall, port_link, up_link) in enumerate(self.firewalls):
                lab.ns(firewall, ["bridge", "fdb", "replace", vm.mac, "dev",
                                  port_link if other == index else up_link, "master", "static"])

    def bridge_sysctls(self, namespace, value):
        for family in ("iptables", "ip6tables"):
            self.lab.ns(namespace, ["sysctl", "-qw", "net.bridge.bridge-nf-call-%s=%d" % (family, value)])

    def configure(self, config):
        for index, (firewall, port_link, up_link) in enumerate(self.firewalls):
            ruleset = config.nft_ruleset(index, port_link, up_link)
            self.lab.ns(firewall, ["nft", "-f", "-"], input_text=ruleset)
