#include "api/api_server.h"

#include <algorithm>

#include "core/log.h"

namespace butterfly {

ApiServer::ApiServer(zmq::context_t& context, Dispatcher& dispatcher, size_t max_frame_bytes)
    : socket_(context, zmq::socket_type::rep), dispatcher_(dispatcher) {
  socket_.set(zmq::sockopt::linger, 0);
  // Frames over twice the dispatcher's limit are cut by ZeroMQ itself (the peer is disconnected)
  // so a client cannot make the daemon allocate without bound; frames between the two limits get
  // a REJECTED answer.
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_frame_bytes) * 2);
}

Status ApiServer::Bind(const std::string& endpoint) {
  try {
    socket_.bind(endpoint);
  } catch (const zmq::error_t& error) {
    return Fail("cannot listen on '" + endpoint + "': " + error.what());
  }
  return Ok();
}

void ApiServer::Serve(const std::atomic<bool>& stop,
                      const std::function<std::chrono::milliseconds()>& periodic,
                      std::chrono::milliseconds tick) {
  zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  std::chrono::milliseconds timeout = tick;
  while (!stop.load() && !dispatcher_.quit_requested()) {
    try {
      zmq::poll(items, 1, timeout);
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;  // a signal: re-check `stop`
      LOG_ERROR("api: poll failed: %s", error.what());
      break;
    }
    timeout = periodic ? std::min(periodic(), tick) : tick;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq::message_t request;
    try {
      if (!socket_.recv(request, zmq::recv_flags::dontwait)) continue;
      std::string answer =
          dispatcher_.HandleFrame(std::string_view(request.data<char>(), request.size()));
      socket_.send(zmq::buffer(answer), zmq::send_flags::none);
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;
      LOG_ERROR("api: %s", error.what());
    }
  }
}

}  // namespace butterfly
