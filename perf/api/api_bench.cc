// API throughput of the real butterflyd over ipc://, against a do-nothing ZeroMQ echo (the
// transport's ceiling) measured in the same run; then what durability (the state journal, one
// fdatasync per batch) and CURVE cost, daemons with and without them measured in turns in the same
// run. The control plane is measured on its own (--no-dataplane: 20,000 vnics are more vhost-user
// sockets than DPDK serves in one process); one line adds what the dataplane's socket per vnic
// costs. Prints figures; asserts nothing.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "core/curve_keys.h"
#include "message.pb.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

class Requester {
 public:
  // `client`: a CURVE key pair and the server's public key, or nullptr for plain text.
  Requester(zmq::context_t& context, const std::string& endpoint,
            const butterfly::ClientKeyFile* client = nullptr)
      : socket_(context, zmq::socket_type::req) {
    socket_.set(zmq::sockopt::linger, 0);
    // A lost answer ends the benchmark with a message instead of hanging it.
    socket_.set(zmq::sockopt::rcvtimeo, 30000);
    if (client) {
      socket_.set(zmq::sockopt::curve_serverkey, client->server_public);
      socket_.set(zmq::sockopt::curve_publickey, client->public_key);
      socket_.set(zmq::sockopt::curve_secretkey, client->secret_key);
    }
    socket_.connect(endpoint);
  }
  proto::Messages Send(const proto::Messages& request) {
    std::string bytes = request.SerializeAsString();
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::message_t reply;
    if (!socket_.recv(reply)) {
      std::fprintf(stderr, "api_bench: no answer\n");
      std::exit(1);
    }
    proto::Messages answer;
    answer.ParseFromArray(reply.data(), static_cast<int>(reply.size()));
    return answer;
  }
  void SendRaw(const std::string& bytes) {
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::message_t reply;
    if (!socket_.recv(reply)) {
      std::fprintf(stderr, "api_bench: no answer from the echo process\n");
      std::exit(1);
    }
  }

 private:
  zmq::socket_t socket_;
};

MessageV0_Request* Add(proto::Messages& batch) {
  proto::Message* message = batch.add_messages();
  message->set_revision(0);
  return message->mutable_message_0()->mutable_request();
}

void Check(const proto::Messages& answer) {
  for (const auto& message : answer.messages()) {
    if (!message.message_0().response().status().status()) {
      std::fprintf(stderr, "api_bench: request failed: %s\n",
                   message.message_0().response().status().error().description().c_str());
      std::exit(1);
    }
  }
}

proto::Messages RuleAdd(const std::string& sg, int n) {
  proto::Messages batch;
  auto* add = Add(batch)->mutable_sg_rule_add();
  add->set_sg_id(sg);
  auto* rule = add->mutable_rule();
  rule->set_direction(MessageV0_Rule_Direction_INBOUND);
  rule->set_protocol(6);
  rule->set_port_start(static_cast<uint32_t>(1 + n % 60000));
  rule->set_port_end(static_cast<uint32_t>(1 + n % 60000));
  rule->mutable_cidr()->set_address("10." + std::to_string(n / 65536 % 256) + "." +
                                    std::to_string(n / 256 % 256) + "." + std::to_string(n % 256));
  rule->mutable_cidr()->set_mask_size(32);
  return batch;
}

pid_t StartDaemon(const std::string& daemon, const std::string& endpoint, const std::string& dir,
                  const std::vector<std::string>& extra = {"--state-file", "none",
                                                           "--no-dataplane"}) {
  std::string sockets = dir + "/sockets";
  std::vector<std::string> args = {daemon, "--no-syslog", "-l", "error",
                                   "-e",   endpoint,      "-s", sockets};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, daemon.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    std::perror("api_bench: cannot start butterflyd");
    std::exit(1);
  }
  return pid;
}

void Quit(Requester& client, pid_t pid) {
  proto::Messages quit;
  Add(quit)->set_app_quit(true);
  client.Send(quit);
  waitpid(pid, nullptr, 0);
}

void AddNic(proto::Messages& batch, const std::string& id, uint32_t vni) {
  auto* nic = Add(batch)->mutable_nic_add();
  nic->set_id(id);
  nic->set_mac("52:54:00:00:01:01");
  nic->set_vni(vni);
}

// Single requests: nic_add + nic_del pairs, one request per frame. Requests per second.
double SingleRequests(Requester& client, int pairs, const std::string& tag) {
  auto start = Clock::now();
  for (int i = 0; i < pairs; ++i) {
    std::string id = tag + "_" + std::to_string(i);
    proto::Messages add;
    AddNic(add, id, 42);
    Check(client.Send(add));
    proto::Messages del;
    Add(del)->set_nic_del(id);
    Check(client.Send(del));
  }
  return 2 * pairs / Seconds(start);
}

// Single requests from `clients` clients at once (a socket and a thread each, as orchestrator
// agents on several hosts would be): what the daemon answers in total, requests per second.
double ConcurrentSingleRequests(zmq::context_t& context, const std::string& endpoint,
                                const butterfly::ClientKeyFile* keys, int clients, int pairs,
                                const std::string& tag) {
  std::vector<std::unique_ptr<Requester>> requesters;
  for (int i = 0; i < clients; ++i) {
    requesters.push_back(std::make_unique<Requester>(context, endpoint, keys));
    proto::Messages status;  // connected (and the CURVE handshake done) before the clock starts
    Add(status)->set_app_status(true);
    Check(requesters.back()->Send(status));
  }
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back(
        [&, i] { SingleRequests(*requesters[i], pairs, tag + "_c" + std::to_string(i)); });
  }
  for (std::thread& thread : threads) thread.join();
  return 2.0 * pairs * clients / Seconds(start);
}

// Batches of 1,000 nic_add in one frame (timed), then the same vnics deleted (not timed) so every
// round starts from the same state. Appends each batch's seconds to `seconds`.
void Batches(Requester& client, int batches, const std::string& tag, std::vector<double>& seconds) {
  for (int b = 0; b < batches; ++b) {
    proto::Messages batch;
    proto::Messages cleanup;
    for (int i = 0; i < 1000; ++i) {
      std::string id = tag + "_" + std::to_string(b) + "_" + std::to_string(i);
      AddNic(batch, id, static_cast<uint32_t>(i));
      Add(cleanup)->set_nic_del(id);
    }
    auto start = Clock::now();
    Check(client.Send(batch));
    seconds.push_back(Seconds(start));
    Check(client.Send(cleanup));
  }
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The latency of one small durable append on the filesystem of `dir`: the floor under any
// request whose answer waits for its fdatasync.
double FdatasyncMicroseconds(const std::string& dir) {
  std::string path = dir + "/fdatasync-probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  constexpr int kRounds = 300;
  char record[100] = {};
  auto start = Clock::now();
  for (int i = 0; i < kRounds; ++i) {
    if (write(fd, record, sizeof(record)) != sizeof(record) || fdatasync(fd) != 0) break;
  }
  double microseconds = Seconds(start) / kRounds * 1e6;
  close(fd);
  unlink(path.c_str());
  return microseconds;
}

struct Setup {
  Setup(const char* name, bool journal, bool curve) : name(name), journal(journal), curve(curve) {}
  const char* name;
  bool journal;
  bool curve;
  pid_t pid = 0;
  std::string endpoint;
  std::unique_ptr<Requester> client;
  double single = 0;                  // requests/s, best of the rounds
  double concurrent = 0;              // requests/s of kClients clients together, best round
  double many = 0;                    // requests/s of kManyClients clients together, best round
  std::vector<double> batch_seconds;  // every batch of every round
  double batch = 0;                   // messages/s of the median batch
};

// The same workloads against four daemons (journal off/on, CURVE off/on), in turns, several
// rounds, keeping each one's best: the machine's noise hits them alike.
void DurabilityAndCurve(const std::string& daemon, const std::string& dir,
                        zmq::context_t& context) {
  // The journal goes where a host would keep it: on disk, not on a tmpfs /tmp.
  char journal_template[] = "/var/tmp/butterfly-api-bench-XXXXXX";
  std::string journal_dir = mkdtemp(journal_template);
  std::string keys = dir + "/curve";
  std::filesystem::create_directories(keys + "/clients");
  auto server = butterfly::GenerateCurveKeyPair();
  auto client = butterfly::GenerateCurveKeyPair();
  if (!server || !client) {
    std::fprintf(stderr, "api_bench: cannot make CURVE keys\n");
    std::exit(1);
  }
  (void)butterfly::WriteNewFile(
      keys + "/server.key",
      "public=" + server->public_key + "\nsecret=" + server->secret_key + "\n", 0600);
  (void)butterfly::WriteNewFile(keys + "/clients/bench.pub", "public=" + client->public_key + "\n",
                                0644);
  butterfly::ClientKeyFile client_keys{client->public_key, client->secret_key, server->public_key};

  std::vector<Setup> setups;
  setups.emplace_back("journal off, CURVE off (baseline)", false, false);
  setups.emplace_back("journal on", true, false);
  setups.emplace_back("CURVE on", false, true);
  setups.emplace_back("journal on + CURVE on", true, true);
  for (size_t i = 0; i < setups.size(); ++i) {
    Setup& setup = setups[i];
    std::string endpoint = "ipc://" + dir + "/durability-" + std::to_string(i);
    std::vector<std::string> extra = {
        "--no-dataplane", "--state-file",
        setup.journal ? journal_dir + "/state-" + std::to_string(i) : "none"};
    if (setup.curve) extra.insert(extra.end(), {"--curve-keys", keys});
    setup.pid = StartDaemon(daemon, endpoint, dir, extra);
    setup.endpoint = endpoint;
    setup.client =
        std::make_unique<Requester>(context, endpoint, setup.curve ? &client_keys : nullptr);
    proto::Messages status;
    Add(status)->set_app_status(true);
    Check(setup.client->Send(status));
  }
  constexpr int kRounds = 3;
  constexpr int kPairs = 1500;
  constexpr int kBatches = 15;
  constexpr int kClients = 8;
  constexpr int kManyClients = 32;
  // Turns rotate at every step, so that no configuration always runs first after another.
  for (int round = 0; round < kRounds; ++round) {
    std::string tag = "r" + std::to_string(round);
    for (size_t turn = 0; turn < setups.size(); ++turn) {
      Setup& setup = setups[(turn + round) % setups.size()];
      setup.single = std::max(setup.single, SingleRequests(*setup.client, kPairs, tag));
    }
    for (size_t turn = 0; turn < setups.size(); ++turn) {
      Setup& setup = setups[(turn + round) % setups.size()];
      setup.concurrent = std::max(
          setup.concurrent,
          ConcurrentSingleRequests(context, setup.endpoint, setup.curve ? &client_keys : nullptr,
                                   kClients, kPairs / kClients, tag + "_m"));
      setup.many = std::max(
          setup.many,
          ConcurrentSingleRequests(context, setup.endpoint, setup.curve ? &client_keys : nullptr,
                                   kManyClients, kPairs / kManyClients, tag + "_n"));
    }
    for (int b = 0; b < kBatches; ++b) {
      for (size_t turn = 0; turn < setups.size(); ++turn) {
        Setup& setup = setups[(turn + b) % setups.size()];
        Batches(*setup.client, 1, tag + "_" + std::to_string(b), setup.batch_seconds);
      }
    }
  }
  for (Setup& setup : setups) setup.batch = 1000 / Median(setup.batch_seconds);
  for (Setup& setup : setups) Quit(*setup.client, setup.pid);
  double fdatasync_us = FdatasyncMicroseconds(journal_dir);
  std::filesystem::remove_all(journal_dir);

  const Setup& base = setups[0];
  std::printf(
      "\nDurability and CURVE: daemons measured in turns, %d rounds; single requests: best "
      "round; batches: median of %d; journal in /var/tmp\n",
      kRounds, kRounds * kBatches);
  std::printf("%-36s %13s %15s %15s %17s %8s\n", "", "1 client", "8 clients", "32 clients",
              "1,000-msg batches", "");
  std::printf("%-36s %13s %15s %15s %17s %8s\n", "configuration", "req/s  cost", "req/s  cost",
              "req/s  cost", "ms/batch  cost", "");
  for (const Setup& setup : setups) {
    std::printf("%-36s %6.0f %5.2fx %8.0f %5.2fx %8.0f %5.2fx %10.2f %5.2fx\n", setup.name,
                setup.single, base.single / setup.single, setup.concurrent,
                base.concurrent / setup.concurrent, setup.many, base.many / setup.many,
                1e6 / setup.batch, base.batch / setup.batch);
  }
  std::printf("cost = baseline rate / this rate (1.00x: free; 2.00x: half the rate)\n");
  std::printf(
      "one 100-byte append + fdatasync on that filesystem: %.0f us, so at most %.0f durable "
      "answers/s to one client\n",
      fdatasync_us, 1e6 / fdatasync_us);
  std::printf(
      "single requests: one client waits for each answer, so each pays a whole sync; requests of "
      "several clients waiting together share one (group commit)\n");
  std::printf("goals: journal cost < 2x on single requests, < 1.10x on 1,000-message batches\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string daemon = argc > 1 ? argv[1] : BUTTERFLYD_PATH;
  int pairs = 10000;
  int rules = 10000;
  int batches = 20;
  char dir_template[] = "/tmp/butterfly-api-bench-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  std::string endpoint = "ipc://" + dir + "/api";
  zmq::context_t context;

  // Baseline: another process whose REP socket answers every frame with an empty Messages:
  // ZeroMQ's own cost across processes, the ceiling for any server behind it.
  std::string echo_endpoint = "ipc://" + dir + "/echo";
  pid_t echo_pid = fork();
  if (echo_pid == 0) {
    {
      zmq::context_t echo_context;
      zmq::socket_t rep(echo_context, zmq::socket_type::rep);
      // The answer to "stop" must leave before the process does, or the parent waits forever:
      // linger, and let the destructors (which _exit would skip) flush it.
      rep.set(zmq::sockopt::linger, 1000);
      rep.bind(echo_endpoint);
      zmq::message_t request;
      while (rep.recv(request)) {
        bool stop = request.size() == 4 && std::string_view(request.data<char>(), 4) == "stop";
        rep.send(zmq::str_buffer(""));
        if (stop) break;
      }
    }
    _exit(0);
  }
  double echo_rate;
  {
    Requester echo_client(context, echo_endpoint);
    proto::Messages one;
    Add(one)->set_nic_del("vnic_0");
    std::string bytes = one.SerializeAsString();
    auto start = Clock::now();
    for (int i = 0; i < 2 * pairs; ++i) echo_client.SendRaw(bytes);
    echo_rate = 2 * pairs / Seconds(start);
    echo_client.SendRaw("stop");
  }
  waitpid(echo_pid, nullptr, 0);

  pid_t pid = StartDaemon(daemon, endpoint, dir);
  Requester client(context, endpoint);
  {
    proto::Messages status;
    Add(status)->set_app_status(true);
    Check(client.Send(status));  // waits until the daemon is up
  }

  // 1. nic_add + nic_del pairs, one request per frame.
  auto start = Clock::now();
  for (int i = 0; i < pairs; ++i) {
    proto::Messages add;
    auto* nic = Add(add)->mutable_nic_add();
    nic->set_id("vnic_" + std::to_string(i));
    nic->set_mac("52:54:00:00:00:01");
    nic->set_vni(42);
    Check(client.Send(add));
    proto::Messages del;
    Add(del)->set_nic_del("vnic_" + std::to_string(i));
    Check(client.Send(del));
  }
  double pair_seconds = Seconds(start);
  double simple_rate = 2 * pairs / pair_seconds;

  // 2. sg_rule_add into one group, up to `rules` rules, one request per frame.
  start = Clock::now();
  for (int i = 0; i < rules; ++i) Check(client.Send(RuleAdd("sg-big", i)));
  double rules_seconds = Seconds(start);

  // 2b. The same with a vnic using the group: every rule rebuilds that vnic's effective policy.
  {
    proto::Messages add;
    auto* nic = Add(add)->mutable_nic_add();
    nic->set_id("user");
    nic->set_mac("52:54:00:00:00:02");
    nic->set_vni(42);
    nic->add_security_group("sg-used");
    Check(client.Send(add));
  }
  start = Clock::now();
  for (int i = 0; i < rules; ++i) Check(client.Send(RuleAdd("sg-used", i)));
  double used_rules_seconds = Seconds(start);

  // 3. Batches of 1,000 messages in one frame.
  start = Clock::now();
  for (int b = 0; b < batches; ++b) {
    proto::Messages batch;
    for (int i = 0; i < 1000; ++i) {
      auto* nic = Add(batch)->mutable_nic_add();
      nic->set_id("batch_" + std::to_string(b) + "_" + std::to_string(i));
      nic->set_mac("52:54:00:00:01:01");
      nic->set_vni(static_cast<uint32_t>(i));
    }
    Check(client.Send(batch));
  }
  double batch_seconds = Seconds(start);

  Quit(client, pid);

  // 4. nic_add + nic_del with the dataplane on: each vnic registers (and unregisters) its
  // vhost-user socket with DPDK.
  constexpr int kDataplanePairs = 1000;
  double dataplane_rate;
  {
    std::string dataplane_endpoint = "ipc://" + dir + "/dataplane";
    pid_t dataplane_pid =
        StartDaemon(daemon, dataplane_endpoint, dir,
                    // No PCI probe: the bench must not touch the machine's own NICs.
                    {"--state-file", "none", "--workers", "1", "--dpdk-args", "--no-pci"});
    Requester dataplane_client(context, dataplane_endpoint);
    proto::Messages status;
    Add(status)->set_app_status(true);
    Check(dataplane_client.Send(status));
    dataplane_rate = SingleRequests(dataplane_client, kDataplanePairs, "dp");
    Quit(dataplane_client, dataplane_pid);
  }

  std::printf(
      "API benchmark: butterflyd over ipc://, one client, %u cores on this machine; control "
      "plane alone (--no-dataplane) unless said\n",
      std::thread::hardware_concurrency());
  std::printf("%-52s %14s %10s\n", "workload", "requests/s", "vs echo");
  std::printf("%-52s %14.0f %9.2fx\n", "ZeroMQ echo process, no processing (baseline)", echo_rate,
              1.0);
  std::printf("%-52s %14.0f %9.2fx\n", "nic_add + nic_del, 1 request/frame", simple_rate,
              simple_rate / echo_rate);
  std::printf("%-52s %14.0f %9.2fx\n", "sg_rule_add into one SG, 1 request/frame",
              rules / rules_seconds, rules / rules_seconds / echo_rate);
  std::printf("%-52s %14.0f %9.2fx\n", "sg_rule_add into one SG used by a vnic",
              rules / used_rules_seconds, rules / used_rules_seconds / echo_rate);
  std::printf("%-52s %14.0f %9s\n", "nic_add, batches of 1,000 messages/frame (messages/s)",
              batches * 1000 / batch_seconds, "-");
  std::printf("%-52s %14.0f %9.2fx\n", "nic_add + nic_del, dataplane on (vhost-user sockets)",
              dataplane_rate, dataplane_rate / echo_rate);
  std::printf("\n10,000-rule SG built in %.3f s (%.3f s when a vnic uses it); goal < 1 s\n",
              rules_seconds, used_rules_seconds);
  std::printf("simple requests: %.0f/s; goal >= 20,000/s\n", simple_rate);
  std::fflush(stdout);

  DurabilityAndCurve(daemon, dir, context);
  std::filesystem::remove_all(dir);
  return 0;
}
