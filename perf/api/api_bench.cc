// API throughput of the real butterflyd over ipc://, against a do-nothing ZeroMQ echo (the
// transport's ceiling) measured in the same run. Prints figures; asserts nothing.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "message.pb.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

class Requester {
 public:
  Requester(zmq::context_t& context, const std::string& endpoint)
      : socket_(context, zmq::socket_type::req) {
    socket_.set(zmq::sockopt::linger, 0);
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
    (void)socket_.recv(reply);
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

pid_t StartDaemon(const std::string& daemon, const std::string& endpoint, const std::string& dir) {
  std::string sockets = dir + "/sockets";
  const char* argv[] = {daemon.c_str(), "--no-syslog", "-l", "error", "--state-file", "none",
                        "-e", endpoint.c_str(), "-s", sockets.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, daemon.c_str(), nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    std::perror("api_bench: cannot start butterflyd");
    std::exit(1);
  }
  return pid;
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
    zmq::context_t echo_context;
    zmq::socket_t rep(echo_context, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    rep.bind(echo_endpoint);
    zmq::message_t request;
    while (rep.recv(request)) {
      bool stop = request.size() == 4 && std::string_view(request.data<char>(), 4) == "stop";
      rep.send(zmq::str_buffer(""));
      if (stop) break;
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

  proto::Messages quit;
  Add(quit)->set_app_quit(true);
  client.Send(quit);
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);

  std::printf("API benchmark: butterflyd over ipc://, one client, %u cores on this machine\n",
              std::thread::hardware_concurrency());
  std::printf("%-52s %14s %10s\n", "workload", "requests/s", "vs echo");
  std::printf("%-52s %14.0f %9.2fx\n", "ZeroMQ echo process, no processing (baseline)", echo_rate, 1.0);
  std::printf("%-52s %14.0f %9.2fx\n", "nic_add + nic_del, 1 request/frame", simple_rate,
              simple_rate / echo_rate);
  std::printf("%-52s %14.0f %9.2fx\n", "sg_rule_add into one SG, 1 request/frame", rules / rules_seconds,
              rules / rules_seconds / echo_rate);
  std::printf("%-52s %14.0f %9.2fx\n", "sg_rule_add into one SG used by a vnic", rules / used_rules_seconds,
              rules / used_rules_seconds / echo_rate);
  std::printf("%-52s %14.0f %9s\n", "nic_add, batches of 1,000 messages/frame (messages/s)",
              batches * 1000 / batch_seconds, "-");
  std::printf("\n10,000-rule SG built in %.3f s (%.3f s when a vnic uses it); goal < 1 s\n",
              rules_seconds, used_rules_seconds);
  std::printf("simple requests: %.0f/s; goal >= 20,000/s\n", simple_rate);
  return 0;
}
