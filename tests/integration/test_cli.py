"""The butterfly CLI against a real butterflyd: every command, outputs, exit codes, dump."""
import json
import os
import re
import subprocess
import unittest

from harness import DaemonTestCase, cli

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_example_commands():
    """The commands of the README's example (between its example markers)."""
    with open(README) as f:
        text = f.read()
    block = text.split("<!-- example:start -->")[1].split("<!-- example:end -->")[0]
    return [line.strip().split()[1:] for line in block.splitlines() if line.strip().startswith("butterfly ")]


RICH_STATE = r"""
messages { revision: 0 message_0 { request { nic_add {
  id: "vm-a" mac: "52:54:00:aa:00:01" vni: 42 ip: "198.18.0.1" ip: "2001:db8::1"
  security_group: "sg-web" security_group: "sg-admin" ip_anti_spoof: true } } } }
messages { revision: 0 message_0 { request { nic_add {
  id: "tap-b" mac: "52:54:00:aa:00:02" vni: 51 ip: "198.18.1.2" type: TAP bypass_filtering: true } } } }
messages { revision: 0 message_0 { request { nic_add {
  id: "bench-c" mac: "52:54:00:aa:00:03" vni: 1337 type: BENCH btype: "ICMP_SND_LIKE"
  dip: "198.18.0.1" dmac: "52:54:00:aa:00:01" } } } }
messages { revision: 0 message_0 { request { nic_add {
  id: "client-d" mac: "52:54:00:aa:00:04" vni: 16777215 type: VHOST_USER_CLIENT
  path: "/tmp/qemu-d.sock" security_group: "sg-missing" packet_trace: true
  packet_trace_path: "/tmp/d.pcap" } } } }
messages { revision: 0 message_0 { request { sg_add { id: "sg-web"
  member: "198.18.0.10" member: "2001:db8::10"
  rule { direction: INBOUND protocol: 6 port_start: 80 port_end: 80 cidr { address: "0.0.0.0" mask_size: 0 } }
  rule { direction: INBOUND protocol: 6 port_start: 8000 port_end: 8080 cidr { address: "::" mask_size: 0 } }
  rule { direction: INBOUND protocol: 17 port_start: 53 port_end: 53 security_group: "sg-admin" }
  rule { direction: OUTBOUND protocol: 1 cidr { address: "198.18.0.0" mask_size: 15 } }
  rule { direction: OUTBOUND protocol: 58 cidr { address: "2001:db8::" mask_size: 32 } }
  rule { direction: INBOUND protocol: -1 security_group: "sg-web" }
  rule { direction: INBOUND protocol: 132 cidr { address: "198.18.7.7" mask_size: 32 } } } } } }
messages { revision: 0 message_0 { request { sg_add { id: "sg-admin" member: "198.18.0.99" } } } }
"""


class CliTest(DaemonTestCase):
    def test_readme_example(self):
        commands = readme_example_commands()
        self.assertGreaterEqual(len(commands), 7)
        for command in commands:
            self.ok(*command)
        nics = json.loads(self.ok("--json", "nic", "details"))
        self.assertEqual(len(nics), 6)
        self.assertEqual(sorted({n["vni"] for n in nics}), [42, 51, 1337])
        for nic in nics:
            self.assertEqual(nic["path"], os.path.join(self.daemon.socket_dir, "qemu-vhost-" + nic["id"]))
            self.assertNotEqual(nic["link"], "connected", "no dataplane: never pretend a VM is connected")
        rules = json.loads(self.ok("--json", "sg", "rule", "list", "sg-web"))
        self.assertEqual([(r["protocol_name"], r["port_start"], r["cidr"]) for r in rules], [("tcp", 80, "0.0.0.0/0")])
        status = json.loads(self.ok("--json", "status"))
        self.assertIn("disabled", status["dataplane"])

    def test_dump_request_dump_is_byte_identical(self):
        self.ok("request", "-", input_text=RICH_STATE)
        for i in range(30):
            self.ok("nic", "add", "--id", "bulk-%02d" % i, "--mac", "52:54:00:bb:00:%02x" % i,
                    "--vni", str(100 + i % 3), "--ip", "198.18.2.%d" % i, "--ip", "2001:db8:2::%x" % i,
                    "--sg", "sg-bulk-%d" % (i % 4))
            self.ok("sg", "rule", "add", "sg-bulk-%d" % (i % 4), "--dir", "out" if i % 2 else "in",
                    "--ip-proto", ["tcp", "udp", "icmp", "icmpv6", "all", "47"][i % 6],
                    *(["--port-start", str(i), "--port-end", str(i + 100)] if i % 6 < 2 else []),
                    *(["--cidr", "198.18.%d.0/24" % i] if i % 3 else ["--sg-members", "sg-bulk-%d" % ((i + 1) % 4)]))
            self.ok("sg", "member", "add", "sg-bulk-%d" % (i % 4), "198.18.3.%d" % i, "2001:db8:3::%x" % i)
        first = self.dump()
        self.assertIn('type: TAP', first)
        self.assertIn('type: VHOST_USER_CLIENT', first)
        self.assertIn('btype: "ICMP_SND_LIKE"', first)
        self.assertNotIn("state {", first)
        path = os.path.join(self.tmp.name, "state.req")
        with open(path, "w") as f:
            f.write(first)
        self.assertEqual(self.daemon.stop(), 0)
        fresh = self.start_daemon(name="butterflyd", args=())  # same socket dir and endpoint
        self.ok("request", path, endpoint=fresh.endpoint)
        self.assertEqual(self.dump(endpoint=fresh.endpoint), first)

    def test_exit_codes(self):
        before = self.dump()
        usage = [
            ["bogus"],
            ["nic", "add", "--mac", "52:54:00:00:00:01", "--vni", "1"],
            ["nic", "add", "--id", "x", "--mac", "52:54:00:zz:00:01", "--vni", "1"],
            ["nic", "add", "--id", "x", "--mac", "52:54:00:00:00:01", "--vni", "16777216"],
            ["nic", "add", "--id", "x", "--mac", "52:54:00:00:00:01", "--vni", "1", "--ip", "1.2.3"],
            ["nic", "add", "--id", "x", "--mac", "52:54:00:00:00:01", "--vni", "1", "--type", "virtio"],
            ["sg", "rule", "add", "s", "--ip-proto", "tcp", "--cidr", "0.0.0.0/0"],
            ["sg", "rule", "add", "s", "--ip-proto", "tcp", "--port-start", "9", "--port-end", "8", "--cidr", "0.0.0.0/0"],
            ["sg", "rule", "add", "s", "--ip-proto", "gre", "--cidr", "0.0.0.0/0"],
            ["sg", "rule", "add", "s", "--ip-proto", "icmp", "--cidr", "0.0.0.0/40"],
            ["sg", "rule", "add", "s", "--ip-proto", "icmp", "--cidr", "0.0.0.0/0", "--sg-members", "x"],
            ["sg", "rule", "add", "s", "--ip-proto", "all", "--dir", "sideways", "--cidr", "0.0.0.0/0"],
            ["sg", "member", "add", "s", "300.1.1.1"],
            ["nic", "update", "--id", "x", "--enable-antispoof", "maybe"],
            ["request", "/nonexistent/file"],
            ["config", "--log-level", "loud"],
            ["sg", "add", "a", "+", "bogus"],
        ]
        for args in usage:
            result = self.run_cli(*args)
            self.assertEqual(result.returncode, 2, "%s: %s%s" % (args, result.stdout, result.stderr))
            self.assertTrue(result.stderr.strip(), args)
        self.assertEqual(self.dump(), before, "bad usage must not touch the state")
        result = self.run_cli("nic", "details", "ghost")
        self.assertEqual(result.returncode, 1)
        self.assertIn("nic ghost: no such nic", result.stderr)
        result = cli(["nic", "list"], "ipc://" + os.path.join(self.tmp.name, "nobody-here"), timeout=1)
        self.assertEqual(result.returncode, 1)
        self.assertIn("no answer", result.stderr)

    def test_every_command_teaches_with_an_example(self):
        paths = [[], ["nic"], ["nic", "add"], ["nic", "update"], ["nic", "del"], ["nic", "list"],
                 ["nic", "details"], ["nic", "stats"], ["nic", "sg"], ["nic", "sg", "set"],
                 ["sg"], ["sg", "add"], ["sg", "del"], ["sg", "list"], ["sg", "rule"],
                 ["sg", "rule", "add"], ["sg", "rule", "del"], ["sg", "rule", "list"],
                 ["sg", "member"], ["sg", "member", "add"], ["sg", "member", "list"],
                 ["status"], ["shutdown"], ["dump"], ["request"], ["config"], ["keygen"],
                 ["keygen", "client"]]
        for path in paths:
            for form in (path + ["--help"], path + ["help"]):
                result = self.run_cli(*form)
                self.assertEqual(result.returncode, 0, form)
                self.assertIn("Example", result.stdout, form)
                self.assertIn("Usage: butterfly", result.stdout, form)

    def test_json_outputs_have_stable_keys(self):
        self.ok("nic", "add", "--id", "v1", "--mac", "52:54:00:00:00:01", "--vni", "7", "--ip", "198.18.0.1")
        added = json.loads(self.ok("--json", "nic", "add", "--id", "v2", "--mac", "52:54:00:00:00:02", "--vni", "7"))
        self.assertEqual(sorted(added), ["id", "path"])
        details = json.loads(self.ok("--json", "nic", "details", "v1"))[0]
        self.assertEqual(list(details), ["id", "mac", "vni", "type", "path", "ips", "security_groups",
                                         "ip_anti_spoof", "bypass_filtering", "packet_trace",
                                         "packet_trace_path", "link", "link_detail"])
        stats = json.loads(self.ok("--json", "nic", "stats", "v1"))
        self.assertEqual(list(stats), ["id", "bytes_in", "bytes_out", "packets_in", "packets_out", "drops"])
        status = json.loads(self.ok("--json", "status"))
        self.assertEqual(list(status), ["version", "start_date", "current_date", "uptime_seconds",
                                        "request_counter", "dataplane", "graph_dot"])
        lines = self.ok("--json", "sg", "add", "a", "+", "sg", "list", "+", "nic", "list").splitlines()
        self.assertEqual([json.loads(line) for line in lines], [{"ok": True}, ["a"], ["v1", "v2"]])

    def test_chained_commands_are_one_batch(self):
        before = json.loads(self.ok("--json", "status"))["request_counter"]
        self.ok("sg", "add", "db", "+", "sg", "member", "add", "db", "198.18.0.7", "2001:db8::7", "+",
                "sg", "rule", "add", "db", "--ip-proto", "tcp", "--port", "5432", "--sg-members", "db")
        after = json.loads(self.ok("--json", "status"))["request_counter"]
        self.assertEqual(after - before, 2, "one request for the chain, one for the second status")
        self.assertEqual(self.ok("sg", "member", "list", "db").split(), ["198.18.0.7", "2001:db8::7"])

    def test_rules_by_hash_and_by_options(self):
        self.ok("sg", "rule", "add", "web", "--ip-proto", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
        self.ok("sg", "rule", "add", "web", "--ip-proto", "tcp", "--port", "443", "--cidr", "::/0")
        self.ok("sg", "rule", "add", "web", "--ip-proto", "tcp", "--port", "443", "--cidr", "::/0")
        table = self.ok("sg", "rule", "list", "web").splitlines()
        self.assertEqual(table[0].split(), ["HASH", "DIR", "PROTOCOL", "PORTS", "REMOTE"])
        self.assertEqual(len(table), 3, "a duplicate rule is kept once")
        hash_443 = [line.split()[0] for line in table if "443" in line][0]
        self.assertRegex(hash_443, r"^[0-9a-f]{16}$")
        self.ok("sg", "rule", "del", "web", hash_443)
        self.ok("sg", "rule", "del", "web", "--ip-proto", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
        self.assertEqual(json.loads(self.ok("--json", "sg", "rule", "list", "web")), [])
        result = self.run_cli("sg", "rule", "del", "web", "0123456789abcdef")
        self.assertEqual(result.returncode, 1)
        self.assertIn("no rule has hash 0123456789abcdef", result.stderr)

    def test_nic_security_group_commands(self):
        self.ok("nic", "add", "--id", "v", "--mac", "52:54:00:00:00:01", "--vni", "1", "--sg", "a")
        self.ok("nic", "sg", "add", "v", "b", "c")
        self.assertEqual(self.ok("nic", "sg", "list", "v").split(), ["a", "b", "c"])
        self.ok("nic", "sg", "del", "v", "a", "c")
        self.assertEqual(self.ok("nic", "sg", "list", "v").split(), ["b"])
        self.ok("nic", "sg", "set", "v", "x", "y")
        self.assertEqual(self.ok("nic", "sg", "list", "v").split(), ["x", "y"])
        self.ok("nic", "sg", "set", "v")
        self.assertEqual(self.ok("nic", "sg", "list", "v").split(), [])
        self.ok("nic", "update", "--id", "v", "--ip", "198.18.0.5", "--enable-antispoof", "true")
        details = json.loads(self.ok("--json", "nic", "details", "v"))[0]
        self.assertEqual((details["ips"], details["ip_anti_spoof"]), (["198.18.0.5"], True))
        self.ok("nic", "update", "--id", "v", "--ip", "")
        self.assertEqual(json.loads(self.ok("--json", "nic", "details", "v"))[0]["ips"], [])
        self.ok("nic", "del", "v", "never-existed")
        self.assertEqual(self.ok("nic", "list"), "")

    def test_status_graph_renders_with_dot(self):
        for command in readme_example_commands():
            self.ok(*command)
        dot = self.ok("status", "--dot")
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        self.assertEqual(svg.returncode, 0, svg.stderr)
        self.assertIn("<svg", svg.stdout)
        for name in ["vnic_1", "vnic_6", "VNI 1337", "sg&#45;web"]:
            self.assertIn(name, svg.stdout)
        human = self.ok("status")
        self.assertRegex(human, r"requests\s+\d+")
        self.assertRegex(human, r"uptime\s+\d+s")

    def test_request_file_answers_and_errors(self):
        path = os.path.join(self.tmp.name, "r.req")
        with open(path, "w") as f:
            f.write('messages { revision: 0 message_0 { request { sg_add { id: "x" } } } }\n'
                    'messages { revision: 0 message_0 { request { nic_details: "ghost" } } }\n')
        result = self.run_cli("request", path, "--stdout")
        self.assertEqual(result.returncode, 1)
        self.assertIn("status: true", result.stdout)
        self.assertIn("nic ghost: no such nic", result.stderr)
        with open(path, "w") as f:
            f.write("messages { revision: 0 message_0 { request { nic_list: maybe } } }\n")
        result = self.run_cli("request", path)
        self.assertEqual(result.returncode, 2)
        self.assertIn("line 1", result.stderr)

    def test_log_level_changes_at_run_time(self):
        self.ok("config", "--log-level", "error")
        self.ok("nic", "add", "--id", "quiet", "--mac", "52:54:00:00:00:01", "--vni", "1")
        self.ok("config", "--log-level", "info")
        self.ok("nic", "add", "--id", "loud", "--mac", "52:54:00:00:00:02", "--vni", "1")
        log = self.daemon.log()
        self.assertNotIn("nic quiet added", log)
        self.assertIn("nic loud added", log)

    def test_shutdown_stops_the_daemon_cleanly(self):
        self.ok("shutdown")
        self.assertEqual(self.daemon.process.wait(10), 0)
        self.assertIn("stopped (app_quit)", self.daemon.log())


if __name__ == "__main__":
    unittest.main()
