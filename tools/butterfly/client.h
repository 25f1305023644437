// The CLI's connection to butterflyd: one ZeroMQ REQ socket, one Messages per round trip, a
// timeout on every wait so the CLI never hangs.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "core/result.h"
#include "message.pb.h"

namespace butterfly::cli {

struct ClientOptions {
  std::string endpoint;
  std::chrono::milliseconds timeout{5000};
  bool verbose = false;
  // CURVE: the daemon's public key and this client's key pair (Z85), when set.
  std::string server_public_key;
  std::string client_public_key;
  std::string client_secret_key;
};

class Client {
 public:
  explicit Client(ClientOptions options);

  // Sends `request` and waits for the answer; a transport failure, a timeout or an undecodable
  // answer is an error whose text says which.
  Result<proto::Messages> RoundTrip(const proto::Messages& request);

 private:
  void Connect();
  void Disconnect();
  // Reads one event of the socket's monitor; returns the error to report when it is a failed
  // handshake (so a refused key is told at once, not after the whole timeout), else nothing.
  std::optional<std::string> HandshakeFailure();

  ClientOptions options_;
  zmq::context_t context_;
  std::optional<zmq::socket_t> socket_;
  std::optional<zmq::socket_t> monitor_;
  int monitors_ = 0;
};

// A batch of one MessageV0 request.
proto::Messages SingleRequest(const MessageV0_Request& request);

}  // namespace butterfly::cli
