// CURVE authentication and encryption of the API. The REP socket becomes a CURVE server
// with the daemon's key pair (DIR/server.key); every handshake is then put to this class's ZAP
// handler (RFC 27, inproc://zeromq.zap.01 in the daemon's ZeroMQ context), which lets in only the
// public keys of DIR/clients/*.pub. A client that fails, whatever the reason (unknown key, no
// CURVE, wrong server key, replayed bytes), gets nothing through; the refusals are logged,
// rate-limited since anyone who reaches the port can cause them.
//
// The client keys are read again on ReloadClients (butterflyd: SIGHUP, `systemctl reload`), so a
// key authorised with `butterfly keygen client --authorize DIR` or a deleted .pub file takes
// effect without a restart. The key is checked at the handshake and again on every request, so
// a session opened with a key removed since gets nothing more through.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "api/api_server.h"
#include "core/result.h"

namespace butterfly {

class CurveAuthenticator {
 public:
  // Reads the keys of `key_dir`, makes `socket` (not yet bound) a CURVE server, and starts
  // answering the context's ZAP requests. Errors name the file at fault.
  static Result<std::unique_ptr<CurveAuthenticator>> Start(zmq::context_t& context,
                                                           zmq::socket_t& socket,
                                                           const std::string& key_dir);
  ~CurveAuthenticator();
  CurveAuthenticator(const CurveAuthenticator&) = delete;
  CurveAuthenticator& operator=(const CurveAuthenticator&) = delete;

  size_t authorised_keys() const;
  // Whether the client key a request came with (its ZAP user id: the key in Z85) is authorised
  // now. Called by the control thread for every request.
  bool IsAuthorised(std::string_view z85_key) const;
  // Reads DIR/clients/*.pub again and authorises exactly those keys. When a file is unreadable
  // or not a key, fails naming it and keeps the keys in use.
  Status ReloadClients();

 private:
  CurveAuthenticator(zmq::context_t& context, std::string key_dir);
  void Run();
  void AnswerZapRequest();
  void ReportFailedHandshake();

  std::string key_dir_;
  // Binary (32-byte) public key -> the file that authorised it. Read by the ZAP thread, replaced
  // by ReloadClients on the control thread.
  mutable std::mutex authorised_mutex_;
  std::unordered_map<std::string, std::string> authorised_;
  zmq::socket_t zap_;
  zmq::socket_t monitor_;  // the API socket's handshake failures
  int stop_fd_ = -1;       // eventfd: wakes the thread up to stop
  std::thread thread_;
};

// butterflyd's entry point: with a key directory, secures `server` (before it binds) and returns
// the authenticator; without one, returns nullptr. Either way logs how the API is protected (and
// warns when an unauthenticated API listens beyond loopback).
Result<std::unique_ptr<CurveAuthenticator>> SecureApi(zmq::context_t& context, ApiServer& server,
                                                      const std::string& key_dir,
                                                      const std::string& endpoint);

}  // namespace butterfly
