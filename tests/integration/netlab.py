"""Network namespaces, veths and processes that a dataplane test creates, all removed in the
test's cleanup (even when it fails). Addresses stay in 198.18.0.0/15; processes are stopped by PID.
"""
import os
import signal
import subprocess
import time

TCP_TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tcp_tools.py")
PYTHON = "/usr/bin/python3"


class NetLab:
    def __init__(self, testcase):
        self.tag = "bf%04d" % (os.getpid() % 10000)
        self.namespaces = []
        self.links = []
        self.processes = []
        testcase.addCleanup(self.cleanup)

    def name(self, suffix):
        """A name unique to this test process, short enough for an interface (15 bytes)."""
        return (self.tag + suffix)[:15]

    def netns(self, suffix):
        name = self.name(suffix)
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.namespaces.append(name)
        self.run(name, ["ip", "link", "set", "lo", "up"])
        # Quiet namespaces: no IPv6 autoconfiguration chatter in the counters.
        self.run(name, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        self.run(name, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
        return name

    def veth(self, a, b):
        a, b = self.name(a), self.name(b)
        subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
        self.links.append(a)
        for link in (a, b):
            subprocess.run(["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % link], check=False)
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
        return a, b

    def move(self, link, namespace, address=None, mtu=None):
        subprocess.run(["ip", "link", "set", link, "netns", namespace], check=True)
        self.run(namespace, ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % link], check=False)
        if address:
            self.run(namespace, ["ip", "addr", "add", address, "dev", link])
        if mtu:
            self.run(namespace, ["ip", "link", "set", link, "mtu", str(mtu)])
        self.run(namespace, ["ip", "link", "set", link, "up"])

    def run(self, namespace, command, check=True, timeout=30):
        result = subprocess.run(["ip", "netns", "exec", namespace] + command, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError("%s in %s failed: %s%s" % (command, namespace, result.stdout, result.stderr))
        return result

    def popen(self, namespace, command, **kwargs):
        process = subprocess.Popen(["ip", "netns", "exec", namespace] + command, **kwargs)
        self.processes.append(process)
        return process

    def ping(self, namespace, address, count=3, wait=1):
        result = self.run(namespace, ["ping", "-c", str(count), "-W", str(wait), "-i", "0.2", address],
                          check=False, timeout=count * (wait + 1) + 10)
        return result.returncode == 0

    def serve_tcp(self, namespace, address, port):
        server = self.popen(namespace, [PYTHON, TCP_TOOLS, "serve", address, str(port)],
                            stdout=subprocess.PIPE, text=True)
        server.stdout.readline()  # "listening"
        return server

    def tcp_request(self, namespace, address, port):
        return self.run(namespace, [PYTHON, TCP_TOOLS, "request", address, str(port)], check=False).returncode == 0

    def cleanup(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for pipe in (process.stdout, process.stderr):
                if pipe:
                    pipe.close()
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], check=False)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], check=False, stderr=subprocess.DEVNULL)
