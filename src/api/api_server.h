// The ZeroMQ REP endpoint of the API: one frame in, one frame out, on any transport (tcp, ipc,
// inproc). Serves from the control thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
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
  // Serves requests until `stop` is set or a client sends app_quit. `periodic` runs between
  // requests and returns how soon it wants to run again (at most `tick` later).
  void Serve(const std::atomic<bool>& stop,
             const std::function<std::chrono::milliseconds()>& periodic,
             std::chrono::milliseconds tick = std::chrono::milliseconds(100));

 private:
  zmq::socket_t socket_;
  Dispatcher& dispatcher_;
};

}  // namespace butterfly
