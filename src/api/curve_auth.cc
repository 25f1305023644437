#include "api/curve_auth.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <iterator>
#include <vector>
#include <zmq_addon.hpp>

#include "core/curve_keys.h"
#include "core/log.h"

namespace butterfly {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr const char* kMonitorEndpoint = "inproc://butterfly-api-handshakes";
constexpr int kLogBurst = 5;
constexpr std::chrono::seconds kLogPeriod{60};

bool IsLoopbackTcp(const std::string& endpoint) {
  return endpoint.rfind("tcp://127.", 0) == 0 || endpoint.rfind("tcp://[::1]", 0) == 0 ||
         endpoint.rfind("tcp://localhost:", 0) == 0;
}

std::string Z85(const std::string& binary_key) {
  char text[41] = "?";
  if (binary_key.size() == 32) {
    zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(binary_key.data()), 32);
  }
  return text;
}

std::string HandshakeFailure(uint16_t event, uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
      return "it does not speak CURVE (a client without -k/--key?)";
    }
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
      return "its handshake does not decrypt (a wrong server key, or replayed bytes)";
    }
    char code[64];
    std::snprintf(code, sizeof(code), "ZMTP protocol error 0x%x", value);
    return code;
  }
  return std::string("its handshake broke off (") + zmq_strerror(static_cast<int>(value)) + ")";
}

// Binary (32-byte) public key -> the file that authorised it.
Result<std::unordered_map<std::string, std::string>> ReadAuthorised(const std::string& key_dir) {
  auto clients = ReadAuthorizedClients(key_dir);
  if (!clients) return Error{clients.error()};
  std::unordered_map<std::string, std::string> authorised;
  for (const AuthorizedClient& client : *clients) {
    std::string binary(32, '\0');
    zmq_z85_decode(reinterpret_cast<uint8_t*>(binary.data()), client.public_key.c_str());
    authorised.emplace(std::move(binary), client.file);
  }
  return authorised;
}

}  // namespace

CurveAuthenticator::CurveAuthenticator(zmq::context_t& context, std::string key_dir)
    : key_dir_(std::move(key_dir)),
      zap_(context, zmq::socket_type::rep),
      monitor_(context, zmq::socket_type::pair) {
  zap_.set(zmq::sockopt::linger, 0);
  monitor_.set(zmq::sockopt::linger, 0);
}

Result<std::unique_ptr<CurveAuthenticator>> CurveAuthenticator::Start(zmq::context_t& context,
                                                                      zmq::socket_t& socket,
                                                                      const std::string& key_dir) {
  std::string server_key_file = key_dir + "/server.key";
  auto server_key = ReadServerKeyFile(server_key_file);
  if (!server_key) return Error{server_key.error()};
  struct stat info {};
  if (stat(server_key_file.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    LOG_WARNING("api: %s (the daemon's secret key) is readable by other users; chmod 600 it",
                server_key_file.c_str());
  }
  auto authorised = ReadAuthorised(key_dir);
  if (!authorised) return Error{authorised.error()};

  std::unique_ptr<CurveAuthenticator> auth(new CurveAuthenticator(context, key_dir));
  auth->authorised_ = std::move(*authorised);
  try {
    auth->zap_.bind(kZapEndpoint);
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, server_key->secret_key);
    socket.set(zmq::sockopt::zap_domain, "butterfly");
    if (zmq_socket_monitor(
            socket.handle(), kMonitorEndpoint,
            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
      throw zmq::error_t();
    }
    auth->monitor_.connect(kMonitorEndpoint);
  } catch (const zmq::error_t& error) {
    return Fail(std::string("cannot set up CURVE on the API socket: ") + error.what());
  }
  auth->stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (auth->stop_fd_ < 0) return Fail("cannot create an eventfd for the CURVE authenticator");
  auth->thread_ = std::thread(&CurveAuthenticator::Run, auth.get());
  return auth;
}

CurveAuthenticator::~CurveAuthenticator() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) LOG_ERROR("api: cannot stop ZAP thread");
    thread_.join();
  }
  if (stop_fd_ >= 0) close(stop_fd_);
}

size_t CurveAuthenticator::authorised_keys() const {
  std::lock_guard lock(authorised_mutex_);
  return authorised_.size();
}

bool CurveAuthenticator::IsAuthorised(std::string_view z85_key) const {
  if (z85_key.size() != 40) return false;
  char text[41];
  z85_key.copy(text, 40);
  text[40] = '\0';
  std::string key(32, '\0');
  if (!zmq_z85_decode(reinterpret_cast<uint8_t*>(key.data()), text)) return false;
  std::lock_guard lock(authorised_mutex_);
  return authorised_.count(key) > 0;
}

Status CurveAuthenticator::ReloadClients() {
  auto authorised = ReadAuthorised(key_dir_);
  if (!authorised) return Error{authorised.error()};
  size_t added = 0;
  size_t removed = 0;
  {
    std::lock_guard lock(authorised_mutex_);
    for (const auto& [key, file] : *authorised) added += authorised_.count(key) == 0;
    for (const auto& [key, file] : authorised_) removed += authorised->count(key) == 0;
    authorised_.swap(*authorised);
  }
  LOG_INFO(
      "api: CURVE client keys reloaded from %s/clients/: %zu authorised (%zu added, %zu "
      "removed; sessions of removed keys get nothing more through)",
      key_dir_.c_str(), authorised_keys(), added, removed);
  return Ok();
}

void CurveAuthenticator::Run() {
  // SIGINT/SIGTERM must interrupt the control thread's poll, not this one.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  zmq::pollitem_t items[] = {{zap_.handle(), 0, ZMQ_POLLIN, 0},
                             {monitor_.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, stop_fd_, ZMQ_POLLIN, 0}};
  while (true) {
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(-1));
      if (items[2].revents & ZMQ_POLLIN) return;
      if (items[0].revents & ZMQ_POLLIN) AnswerZapRequest();
      if (items[1].revents & ZMQ_POLLIN) ReportFailedHandshake();
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;
      // Without answers every handshake stalls: clients get nothing through, which is safe.
      LOG_ERROR("api: the CURVE authenticator stopped: %s", error.what());
      return;
    }
  }
}

void CurveAuthenticator::AnswerZapRequest() {
  // RFC 27: version, request id, domain, address, routing id, mechanism, credentials...
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(zap_, std::back_inserter(request))) return;
  auto frame = [&request](size_t i) { return i < request.size() ? request[i].to_string() : ""; };
  std::string address = frame(3);
  std::string key = frame(6);
  bool is_curve = frame(5) == "CURVE" && key.size() == 32;
  bool allowed = false;
  std::string authorising_file;
  if (is_curve) {
    std::lock_guard lock(authorised_mutex_);
    auto found = authorised_.find(key);
    allowed = found != authorised_.end();
    if (allowed) authorising_file = found->second;
  }
  if (allowed) {
    LOG_DEBUG("api: CURVE client %s from %s accepted (%s)", Z85(key).c_str(), address.c_str(),
              authorising_file.c_str());
  } else if (is_curve) {
    LOG_RATE_LIMITED(LogLevel::kWarning, kLogBurst, kLogPeriod,
                     "api: refused a client from %s: its CURVE key %s is not in %s/clients/",
                     address.c_str(), Z85(key).c_str(), key_dir_.c_str());
  } else {
    LOG_RATE_LIMITED(LogLevel::kWarning, kLogBurst, kLogPeriod,
                     "api: refused a client from %s: mechanism '%s' is not CURVE", address.c_str(),
                     frame(5).c_str());
  }
  // The user id every request of the session carries: checked again per request.
  std::string user_id = allowed ? Z85(key) : std::string();
  std::vector<zmq::const_buffer> reply = {
      zmq::str_buffer("1.0"),
      zmq::buffer(request.size() > 1 ? request[1].data() : nullptr,
                  request.size() > 1 ? request[1].size() : 0),
      allowed ? zmq::str_buffer("200") : zmq::str_buffer("400"),
      allowed ? zmq::str_buffer("OK") : zmq::str_buffer("key not authorised"),
      zmq::buffer(user_id),
      zmq::str_buffer("")};
  zmq::send_multipart(zap_, reply);
}

void CurveAuthenticator::ReportFailedHandshake() {
  // Monitor events: a 6-byte frame (u16 event, u32 value) and the endpoint.
  std::vector<zmq::message_t> event;
  if (!zmq::recv_multipart(monitor_, std::back_inserter(event))) return;
  if (event.empty() || event[0].size() < 6) return;
  uint16_t id;
  uint32_t value;
  std::memcpy(&id, event[0].data(), sizeof(id));
  std::memcpy(&value, static_cast<const char*>(event[0].data()) + 2, sizeof(value));
  std::string endpoint = event.size() > 1 ? event[1].to_string() : "?";
  LOG_RATE_LIMITED(LogLevel::kWarning, kLogBurst, kLogPeriod, "api: refused a client on %s: %s",
                   endpoint.c_str(), HandshakeFailure(id, value).c_str());
}

Result<std::unique_ptr<CurveAuthenticator>> SecureApi(zmq::context_t& context, ApiServer& server,
                                                      const std::string& key_dir,
                                                      const std::string& endpoint) {
  if (key_dir.empty()) {
    if (endpoint.rfind("tcp://", 0) == 0 && !IsLoopbackTcp(endpoint)) {
      LOG_WARNING(
          "api: listening on %s without authentication: anyone who reaches it controls "
          "this switch (see --curve-keys)",
          endpoint.c_str());
    } else {
      LOG_INFO("api: unauthenticated (no --curve-keys); reachable from this host only");
    }
    return std::unique_ptr<CurveAuthenticator>();
  }
  auto auth = CurveAuthenticator::Start(context, server.socket(), key_dir);
  if (!auth) return Fail("--curve-keys: " + auth.error());
  CurveAuthenticator* checker = auth->get();
  server.AdmitOnly([checker](std::string_view user_id) { return checker->IsAuthorised(user_id); });
  if ((*auth)->authorised_keys() == 0) {
    LOG_WARNING("api: CURVE on, but %s/clients/ holds no *.pub key: every client is refused",
                key_dir.c_str());
  } else {
    LOG_INFO(
        "api: CURVE on: %zu authorised client key(s) in %s/clients/; any other client gets "
        "nothing through",
        (*auth)->authorised_keys(), key_dir.c_str());
  }
  return auth;
}

}  // namespace butterfly
