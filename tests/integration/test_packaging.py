"""scripts/build-packages turns the built tree into an RPM and a DEB (without compiling
again), and both hold the binaries, the systemd unit, the configuration (marked as such) and the
man pages; the binaries inside run."""
import os
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR

SOURCE_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXPECTED = [
    "/usr/sbin/butterflyd",
    "/usr/bin/butterfly",
    "/etc/butterfly/butterfly.conf",
    "/usr/lib/systemd/system/butterflyd.service",
    "/usr/share/man/man8/butterflyd.8.gz",
    "/usr/share/man/man1/butterfly.1.gz",
    "/usr/share/bash-completion/completions/butterfly",
]


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs).stdout


class PackagingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="butterfly-packages-")
        cls.out = os.path.join(cls.tmp.name, "out")
        result = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "build-packages"), BUILD_DIR, cls.out],
                                capture_output=True, text=True, timeout=600)
        cls.listing = result.stdout
        if result.returncode != 0:
            cls.tmp.cleanup()
            raise AssertionError("build-packages failed:\n%s\n%s" % (result.stdout, result.stderr))
        print("\n" + result.stdout)
        files = sorted(os.listdir(cls.out))
        cls.rpm = [os.path.join(cls.out, f) for f in files if f.endswith(".rpm")]
        cls.deb = [os.path.join(cls.out, f) for f in files if f.endswith(".deb")]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def extract(self, package):
        root = tempfile.mkdtemp(dir=self.tmp.name)
        if package.endswith(".deb"):
            run(["dpkg-deb", "--extract", package, root])
        else:
            # rpm2archive (from the rpm package) writes the payload as a tar stream.
            with open(package, "rb") as rpm:
                tar = subprocess.run(["rpm2archive", "-"], stdin=rpm, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-xz", "-C", root], input=tar, check=True)
        return root

    def check_contents(self, package, files, config_files):
        for path in EXPECTED:
            self.assertIn(path, files, "%s lacks %s" % (os.path.basename(package), path))
        self.assertEqual(config_files, ["/etc/butterfly/butterfly.conf"])
        root = self.extract(package)
        with open(os.path.join(root, "usr/lib/systemd/system/butterflyd.service")) as f:
            self.assertIn("ExecStart=/usr/sbin/butterflyd -c /etc/butterfly/butterfly.conf\n", f.read())
        for binary in ("usr/sbin/butterflyd", "usr/bin/butterfly"):
            self.assertIn("0.", run([os.path.join(root, binary), "--version"]))

    def test_rpm_holds_the_unit_the_config_and_the_man_pages(self):
        self.assertEqual(len(self.rpm), 1, os.listdir(self.out))
        files = run(["rpm", "-qlp", self.rpm[0]]).split()
        config_files = run(["rpm", "-qcp", self.rpm[0]]).split()
        self.check_contents(self.rpm[0], files, config_files)
        requires = run(["rpm", "-qRp", self.rpm[0]])
        self.assertIn("libzmq.so.5", requires)

    def test_deb_holds_the_unit_the_config_and_the_man_pages(self):
        self.assertEqual(len(self.deb), 1, os.listdir(self.out))
        files = [line.split()[-1].lstrip(".") for line in run(["dpkg-deb", "--contents", self.deb[0]]).splitlines()]
        control = tempfile.mkdtemp(dir=self.tmp.name)
        run(["dpkg-deb", "--control", self.deb[0], control])
        with open(os.path.join(control, "conffiles")) as f:
            config_files = f.read().split()
        self.check_contents(self.deb[0], files, config_files)
        depends = run(["dpkg-deb", "--field", self.deb[0], "Depends"])
        self.assertIn("libzmq5", depends)
        for script in ("postinst", "prerm", "postrm"):
            self.assertTrue(os.access(os.path.join(control, script), os.X_OK), script)

    def test_listing_names_both_packages(self):
        self.assertIn("== %s" % self.rpm[0], self.listing)
        self.assertIn("== %s" % self.deb[0], self.listing)


if __name__ == "__main__":
    unittest.main()
