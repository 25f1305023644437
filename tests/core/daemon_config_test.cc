#include "core/daemon_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace butterfly {
namespace {

DaemonArgs Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "butterflyd");
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data());
}

class IniFile {
 public:
  explicit IniFile(const std::string& text) {
    char name[] = "/tmp/butterfly-config-XXXXXX";
    int fd = mkstemp(name);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~IniFile() { std::remove(path.c_str()); }
  std::string path;
};

TEST(DaemonConfigTest, DefaultsAreSafeAndRunnable) {
  DaemonArgs args = Parse({});
  ASSERT_FALSE(args.exit_now) << args.error;
  EXPECT_EQ(args.config.endpoint, "tcp://127.0.0.1:9999");
  EXPECT_EQ(args.config.workers, 1u);
  EXPECT_EQ(args.config.vxlan_port, 4789);
  EXPECT_TRUE(args.config.vtep_ip.empty());
}

TEST(DaemonConfigTest, TheFdbCapPerVniHasADefaultRefusesZeroAndIsReadFromTheIniFile) {
  EXPECT_EQ(Parse({}).config.fdb_vni_max, 4096u);
  DaemonArgs set = Parse({"--fdb-vni-max", "100000"});
  ASSERT_FALSE(set.exit_now) << set.error;
  EXPECT_EQ(set.config.fdb_vni_max, 100000u);
  for (const char* bad : {"0", "-1", "x", "16777217"}) {
    DaemonArgs refused = Parse({"--fdb-vni-max", bad});
    EXPECT_EQ(refused.exit_code, 2) << bad;
    EXPECT_NE(refused.error.find("--fdb-vni-max"), std::string::npos) << refused.error;
  }
  IniFile ini("[general]\nfdb-vni-max=300\n");
  DaemonArgs from_file = Parse({"-c", ini.path});
  ASSERT_FALSE(from_file.exit_now) << from_file.error;
  EXPECT_EQ(from_file.config.fdb_vni_max, 300u);
}

TEST(DaemonConfigTest, TheConntrackVnicQuotaDefaultsToAnEighthOfTheTableAndFitsIt) {
  EXPECT_EQ(Parse({}).config.conntrack_vnic_quota, (1u << 18) / 8);
  EXPECT_EQ(Parse({"--conntrack-entries", "4096"}).config.conntrack_vnic_quota, 512u);
  DaemonArgs set = Parse({"--conntrack-entries", "4096", "--conntrack-vnic-quota", "4096"});
  ASSERT_FALSE(set.exit_now) << set.error;
  EXPECT_EQ(set.config.conntrack_vnic_quota, 4096u);
  DaemonArgs larger = Parse({"--conntrack-entries", "4096", "--conntrack-vnic-quota", "4097"});
  EXPECT_TRUE(larger.exit_now);
  EXPECT_EQ(larger.exit_code, 2);
  EXPECT_NE(larger.error.find("larger than conntrack-entries 4096"), std::string::npos)
      << larger.error;
  DaemonArgs zero = Parse({"--conntrack-vnic-quota", "0"});
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.error.find("--conntrack-vnic-quota"), std::string::npos) << zero.error;
  IniFile ini("[general]\nconntrack-vnic-quota=100\n");
  DaemonArgs from_file = Parse({"-c", ini.path});
  ASSERT_FALSE(from_file.exit_now) << from_file.error;
  EXPECT_EQ(from_file.config.conntrack_vnic_quota, 100u);
}

TEST(DaemonConfigTest, HelpAndVersionExitZero) {
  DaemonArgs help = Parse({"--help"});
  EXPECT_TRUE(help.exit_now);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--socket-dir"), std::string::npos);
  EXPECT_NE(help.output.find("command line wins"), std::string::npos);
  DaemonArgs version = Parse({"-V"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.output.find("butterflyd"), std::string::npos);
}

TEST(DaemonConfigTest, BadValuesAreUsageErrors) {
  for (std::vector<std::string> bad :
       std::vector<std::vector<std::string>>{{"-i", "1.2.3"},
                                             {"-i", "224.0.0.1"},
                                             {"-e", "http://x"},
                                             {"-l", "loud"},
                                             {"--dpdk-port", "x"},
                                             {"-m", "12"},
                                             {"--workers", "0"},
                                             {"--workers", "3-1"},
                                             {"--state-file", "rel/path"},
                                             {"--vxlan-port", "0"},
                                             {"-s", "relative"},
                                             {"--no-such-option"},
                                             {"--workers", "2", "-u", "1"}}) {
    DaemonArgs args = Parse(bad);
    EXPECT_TRUE(args.exit_now) << bad[0];
    EXPECT_EQ(args.exit_code, 2) << bad[0];
    EXPECT_FALSE(args.error.empty()) << bad[0];
  }
}

TEST(DaemonConfigTest, ParsesEveryKindOfValue) {
  DaemonArgs args = Parse({"-i", "2001:DB8::1", "-m", "max", "--workers", "1,3-4", "--no-jit",
                           "--dpdk-port", "2", "--state-file", "none", "-l", "debug"});
  ASSERT_FALSE(args.exit_now) << args.error;
  EXPECT_EQ(args.config.vtep_ip, "2001:db8::1");
  EXPECT_TRUE(args.config.nic_mtu_max);
  EXPECT_EQ(args.config.worker_cores, (std::vector<unsigned>{1, 3, 4}));
  EXPECT_EQ(args.config.workers, 3u);
  EXPECT_TRUE(args.config.no_jit);
  EXPECT_EQ(*args.config.dpdk_port, 2);
  EXPECT_EQ(args.config.state_file, "none");
  EXPECT_EQ(args.config.log_level, LogLevel::kDebug);
}

TEST(DaemonConfigTest, CommandLineWinsOverTheFile) {
  IniFile ini(
      "; comment\n[general]\nip=198.18.0.1\nendpoint = ipc:///tmp/from-file\n"
      "socket-dir=/tmp/file-sockets\ngraph-core-id=1\n[security]\n");
  DaemonArgs args = Parse({"-c", ini.path, "-e", "ipc:///tmp/from-cli"});
  ASSERT_FALSE(args.exit_now) << args.error;
  EXPECT_EQ(args.config.endpoint, "ipc:///tmp/from-cli");
  EXPECT_EQ(args.config.vtep_ip, "198.18.0.1");
  EXPECT_EQ(args.config.socket_dir, "/tmp/file-sockets");
  EXPECT_EQ(args.config.worker_cores, std::vector<unsigned>{1});
  ASSERT_EQ(args.notes.size(), 1u);
  EXPECT_NE(args.notes[0].find("endpoint ignored: the command line sets it"), std::string::npos);
}

TEST(DaemonConfigTest, FileErrorsSayWhere) {
  IniFile unknown("[general]\nip=198.18.0.1\nsockt-dir=/tmp\n");
  DaemonArgs args = Parse({"-c", unknown.path});
  EXPECT_EQ(args.exit_code, 2);
  EXPECT_NE(args.error.find(unknown.path + ":3: unknown key 'sockt-dir'"), std::string::npos)
      << args.error;

  IniFile bad_value("[general]\nnic-mtu=huge\n");
  args = Parse({"-c", bad_value.path});
  EXPECT_EQ(args.exit_code, 2);
  EXPECT_NE(args.error.find(":2: --nic-mtu"), std::string::npos) << args.error;

  IniFile psk("[security]\nencryption_key_path=/etc/key\n");
  args = Parse({"-c", psk.path});
  EXPECT_EQ(args.exit_code, 2);
  EXPECT_NE(args.error.find("curve-keys"), std::string::npos);

  IniFile contradiction("[general]\nworkers=2\ngraph-cpu-core=1\n");
  args = Parse({"-c", contradiction.path});
  EXPECT_EQ(args.exit_code, 2);
  EXPECT_NE(args.error.find("both choose the workers' cores"), std::string::npos);

  args = Parse({"-c", "/nonexistent/butterfly.conf"});
  EXPECT_EQ(args.exit_code, 2);
  EXPECT_NE(args.error.find("cannot read config file"), std::string::npos);
}

}  // namespace
}  // namespace butterfly
