// The ZeroMQ endpoint of the API: one frame in, one frame out, on any transport (tcp, ipc,
// inproc), to the original's REQ clients. Serves from the control thread.
//
// A ROUTER socket, not REP, for group commit: the requests of several clients that wait together
// are answered together, their changes made durable by one journal sync instead of one each (a
// REP socket holds the next request back until the previous one is answered).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "api/dispatcher.h"
#include "core/result.h"

namespace butterfly {

class ApiServer {
 public:
  ApiServer(zmq::context_t& context, Dispatcher& dispatcher, size_t max_frame_bytes);

  // Binds `endpoint`; the error says which endpoint and why.
  Status Bind(const std::string& endpoint);
  // For settings other modules own, made before Bind (CURVE: api/curve_auth.h).
  zmq::socket_t& socket() { return socket_; }
  // From then on, a request whose ZAP user id `admit` refuses is dropped unanswered (and logged).
  void AdmitOnly(std::function<bool(std::string_view user_id)> admit) { admit_ = std::move(admit); }
  // Serves requests until `stop` is set or a client sends app_quit. `periodic` runs between
  // requests and returns how soon it wants to run again (at most `tick` later).
  void Serve(const std::atomic<bool>& stop,
             const std::function<std::chrono::milliseconds()>& periodic,
             std::chrono::milliseconds tick = std::chrono::milliseconds(100));

 private:
  // One request as the socket delivered it: the routing envelope, then the request frame.
  struct Request {
    std::vector<zmq::message_t> envelope;
    zmq::message_t body;
    std::string answer;
  };
  // Takes every request waiting, up to kMaxGroup; false when the socket had none.
  bool ReceiveGroup(std::vector<Request>* group);
  void Answer(Request& request);

  static constexpr size_t kMaxGroup = 64;
  zmq::socket_t socket_;
  Dispatcher& dispatcher_;
  std::function<bool(std::string_view)> admit_;
};

}  // namespace butterfly
