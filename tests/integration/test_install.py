"""What `cmake --install` puts on a host: binaries, the default configuration (accepted by
butterflyd, every option documented), the systemd unit (valid for systemd), man pages that cover
every option and command `--help` prints, and a bash completion that follows the CLI."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR, BUTTERFLY, BUTTERFLYD, Daemon, cli

SOURCE_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGING = os.path.join(SOURCE_DIR, "packaging")
# Options that only make sense on the command line.
COMMAND_LINE_ONLY = {"--help", "--version", "--config", "--dpdk-help"}


def help_options(help_text):
    """Long options of the Options: section of a CLI11 help text."""
    options = []
    in_options = False
    for line in help_text.splitlines():
        if line.startswith("Options:"):
            in_options = True
        elif in_options and not line.strip():
            break
        elif in_options and line.startswith("  -"):
            names = line.split()[0]
            options += [name for name in names.split(",") if name.startswith("--")]
    return options


def help_subcommands(help_text):
    match = re.search(r"^Subcommands:\n((?:  \S.*\n)+)", help_text, re.M)
    return [line.split()[0] for line in match.group(1).splitlines()] if match else []


def command_tree(path=()):
    """{command path: its help text} for every butterfly command, recursively."""
    help_text = subprocess.run([BUTTERFLY] + list(path) + ["--help"], capture_output=True,
                               text=True, check=True).stdout
    tree = {path: help_text}
    for sub in help_subcommands(help_text):
        tree.update(command_tree(path + (sub,)))
    return tree


def man_source(name):
    """The man page's roff source with font changes dropped and \\- made a hyphen."""
    with open(os.path.join(PACKAGING, "man", name)) as f:
        text = f.read()
    return re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-")


class InstallTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="butterfly-install-")
        self.addCleanup(self.tmp.cleanup)

    def install(self, prefix, destdir=None):
        env = dict(os.environ)
        if destdir:
            env["DESTDIR"] = destdir
        result = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix],
                                capture_output=True, text=True, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_install_with_prefix_usr_puts_everything_where_systemd_and_man_look(self):
        root = os.path.join(self.tmp.name, "root")
        self.install("/usr", destdir=root)
        for path in ["usr/sbin/butterflyd", "usr/bin/butterfly", "etc/butterfly/butterfly.conf",
                     "usr/lib/systemd/system/butterflyd.service", "usr/share/man/man8/butterflyd.8",
                     "usr/share/man/man1/butterfly.1",
                     "usr/share/bash-completion/completions/butterfly"]:
            self.assertTrue(os.path.isfile(os.path.join(root, path)), path)
        with open(os.path.join(root, "usr/lib/systemd/system/butterflyd.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/butterflyd -c /etc/butterfly/butterfly.conf\n", unit)
        for line in ["Type=notify", "Restart=on-failure", "KillSignal=SIGTERM",
                     "RestartPreventExitStatus=2", "StateDirectory=butterfly"]:
            self.assertIn(line + "\n", unit)

    def test_unit_file_is_valid_for_systemd(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        prefix = os.path.join(self.tmp.name, "prefix")
        self.install(prefix)  # so that ExecStart names a binary that exists
        result = subprocess.run(
            ["systemd-analyze", "verify", os.path.join(prefix, "lib/systemd/system/butterflyd.service")],
            capture_output=True, text=True, env=dict(os.environ, MANPATH=os.path.join(prefix, "share/man")))
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_default_config_is_accepted_and_documents_every_option(self):
        conf = os.path.join(PACKAGING, "butterfly.conf")
        daemon = Daemon(self.tmp.name, args=["-c", conf])
        self.addCleanup(daemon.stop)
        daemon.start()
        self.assertEqual(daemon.stop(), 0)
        with open(conf) as f:
            text = f.read()
        help_text = subprocess.run([BUTTERFLYD, "--help"], capture_output=True, text=True).stdout
        for option in help_options(help_text):
            if option not in COMMAND_LINE_ONLY:
                self.assertRegex(text, r"(?m)^;%s=" % re.escape(option[2:]),
                                 "%s is not documented in butterfly.conf" % option)
        # Every example value, uncommented, is accepted. (--dpdk-help exits right after reading
        # the settings, so the file is checked without starting anything.) graph-cpu-core is the
        # original's alternative to workers: the two may not be set together.
        uncommented = re.sub(r"(?m)^;(?!graph-cpu-core)([a-z-]+=)", r"\1", text)
        path = os.path.join(self.tmp.name, "uncommented.conf")
        with open(path, "w") as f:
            f.write(uncommented)
        result = subprocess.run([BUTTERFLYD, "-c", path, "--dpdk-help"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_butterflyd_man_page_has_every_option_of_its_help(self):
        help_text = subprocess.run([BUTTERFLYD, "--help"], capture_output=True, text=True).stdout
        page = man_source("butterflyd.8")
        options = help_options(help_text)
        self.assertGreater(len(options), 15)
        for option in options:
            self.assertTrue(option in page, "butterflyd.8 does not document " + option)

    def test_butterfly_man_page_has_every_command_and_option_of_its_help(self):
        page = man_source("butterfly.1")
        tree = command_tree()
        self.assertGreater(len(tree), 30)
        for path, help_text in tree.items():
            if path:
                self.assertTrue(" ".join(path) in page,
                                "butterfly.1 does not document `%s`" % " ".join(path))
            for option in help_options(help_text):
                self.assertTrue(option in page, "butterfly.1 does not document %s of %s" %
                                (option, " ".join(path) or "butterfly"))

    def test_man_pages_render_without_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed")
        for page in ("butterflyd.8", "butterfly.1"):
            result = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(PACKAGING, "man", page)],
                                    capture_output=True, text=True)
            self.assertEqual((result.returncode, result.stderr), (0, ""), page)


class CompletionTest(unittest.TestCase):
    SCRIPT = os.path.join(PACKAGING, "bash-completion", "butterfly")

    def complete(self, *words):
        """What bash completes for `butterfly WORDS...` with the cursor on the last word."""
        program = ('source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                   '_butterfly; printf "%s\\n" "${COMPREPLY[@]}"')
        result = subprocess.run(["bash", "-c", program, self.SCRIPT, BUTTERFLY] + list(words),
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.stderr, "")
        return [line for line in result.stdout.splitlines() if line]

    def test_commands_and_options_follow_the_cli(self):
        tree = command_tree()
        for path in [(), ("nic",), ("sg", "rule"), ("keygen",)]:
            self.assertEqual(self.complete(*path, ""), help_subcommands(tree[path]), path)
        self.assertEqual(self.complete("nic", "add", "--"),
                         [o for o in help_options(tree[("nic", "add")])])
        self.assertEqual(self.complete("--j"), ["--json"])
        self.assertEqual(self.complete("sg", "add", "x", "+", "nic", "s"), ["stats", "sg"])

    def test_values_of_options(self):
        self.assertEqual(self.complete("nic", "add", "--type", ""), ["vhost", "vhost-client", "tap", "bench"])
        self.assertEqual(self.complete("sg", "rule", "add", "sg-web", "--ip-proto", "icmp"), ["icmp", "icmpv6"])
        self.assertEqual(self.complete("config", "--log-level", "w"), ["warning"])
        self.assertIn(os.path.basename(self.SCRIPT), os.listdir(os.path.dirname(self.SCRIPT)))
        directory = os.path.dirname(self.SCRIPT) + "/"
        self.assertIn(self.SCRIPT, self.complete("-k", directory))

    def test_ids_come_from_the_daemon_it_names(self):
        tmp = tempfile.TemporaryDirectory(prefix="butterfly-completion-")
        self.addCleanup(tmp.cleanup)
        daemon = Daemon(tmp.name)
        self.addCleanup(daemon.stop)
        daemon.start()
        for args in (["nic", "add", "--id", "vm-web", "--mac", "52:54:00:00:00:01", "--vni", "1"],
                     ["nic", "add", "--id", "vm-db", "--mac", "52:54:00:00:00:02", "--vni", "1"],
                     ["sg", "add", "sg-web", "sg-admin"]):
            self.assertEqual(cli(args, daemon.endpoint).returncode, 0)
        endpoint = ["-e", daemon.endpoint]
        self.assertEqual(self.complete(*endpoint, "nic", "details", "vm-"), ["vm-db", "vm-web"])
        self.assertEqual(self.complete(*endpoint, "nic", "sg", "add", "vm-web", ""), ["sg-admin", "sg-web"])
        self.assertEqual(self.complete(*endpoint, "sg", "rule", "add", "sg-w"), ["sg-web"])
        self.assertEqual(self.complete(*endpoint, "nic", "update", "--id", ""), ["vm-db", "vm-web"])
        self.assertEqual(self.complete(*endpoint, "nic", "add", "--sg", "sg-a"), ["sg-admin"])


if __name__ == "__main__":
    unittest.main()
