#include "api/api_server.h"

#include <malloc.h>

#include <algorithm>

#include "core/log.h"

namespace butterfly {

ApiServer::ApiServer(zmq::context_t& context, Dispatcher& dispatcher, size_t max_frame_bytes)
    : socket_(context, zmq::socket_type::router), dispatcher_(dispatcher) {
  socket_.set(zmq::sockopt::linger, 0);
  // Frames over twice the dispatcher's limit (kMaxReceivedFrameBytes by default) are cut by ZeroMQ
  // itself, the peer disconnected unanswered, so a client cannot make the daemon allocate without
  // bound; frames between the two limits get a REJECTED answer. The CLI sends neither.
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

bool ApiServer::ReceiveGroup(std::vector<Request>* group) {
  group->clear();
  while (group->size() < kMaxGroup) {
    std::vector<zmq::message_t> parts;
    while (true) {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
      bool more = part.more();
      parts.push_back(std::move(part));
      if (!more) break;
    }
    if (parts.empty()) break;
    // [identity][empty delimiter][request] from a REQ client; a DEALER client may leave the
    // delimiter out. Anything shorter has no request to answer.
    if (parts.size() < 2) {
      LOG_DEBUG("api: dropped a message without a routing envelope");
      continue;
    }
    if (admit_) {
      // The key this session authenticated with may have been removed since (SIGHUP).
      const char* user_id = zmq_msg_gets(parts.back().handle(), "User-Id");
      if (!user_id || !admit_(user_id)) {
        LOG_RATE_LIMITED(LogLevel::kWarning, 5, std::chrono::seconds(10),
                         "api: dropped a request from CURVE key %s: no longer authorised",
                         user_id ? user_id : "(none)");
        continue;
      }
    }
    Request& request = group->emplace_back();
    request.body = std::move(parts.back());
    parts.pop_back();
    request.envelope = std::move(parts);
  }
  return !group->empty();
}

void ApiServer::Answer(Request& request) {
  for (zmq::message_t& part : request.envelope) socket_.send(part, zmq::send_flags::sndmore);
  // Handed over, not copied: answers of a big model weigh megabytes. A client that left
  // meanwhile is dropped silently by the ROUTER socket.
  auto* answer = new std::string(std::move(request.answer));
  zmq::message_t body(
      answer->data(), answer->size(),
      [](void*, void* hint) { delete static_cast<std::string*>(hint); }, answer);
  socket_.send(body, zmq::send_flags::none);
}

void ApiServer::Serve(const std::atomic<bool>& stop,
                      const std::function<std::chrono::milliseconds()>& periodic,
                      std::chrono::milliseconds tick) {
  zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  std::chrono::milliseconds timeout = tick;
  std::vector<Request> group;
  // Requests free what they built (answers, models of big changes), but glibc keeps freed heap
  // pages for reuse: a burst of large answers left the daemon 1.4 GB bigger for good. The first
  // quiet moment after some work hands them back to the kernel (a few ms, never under load).
  // Some frees land after that moment, on other threads: ZeroMQ's I/O thread frees answers once
  // sent, the RCU callbacks free replaced tables and filters. A second trim a second later hands
  // those back too.
  bool trim_due = false;
  bool second_trim_due = false;
  auto second_trim_at = std::chrono::steady_clock::now();
  while (!stop.load() && !dispatcher_.quit_requested()) {
    try {
      zmq::poll(items, 1, timeout);
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;  // a signal: re-check `stop`
      LOG_ERROR("api: poll failed: %s", error.what());
      break;
    }
    timeout = periodic ? std::min(periodic(), tick) : tick;
    if (!(items[0].revents & ZMQ_POLLIN)) {
      if (trim_due) {
        malloc_trim(0);
        second_trim_due = true;
        second_trim_at = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      } else if (second_trim_due && std::chrono::steady_clock::now() >= second_trim_at) {
        malloc_trim(0);
        second_trim_due = false;
      }
      trim_due = false;
      continue;
    }
    trim_due = true;
    second_trim_due = false;
    try {
      if (!ReceiveGroup(&group)) continue;
      std::vector<std::string_view> frames;
      frames.reserve(group.size());
      for (const Request& request : group) {
        frames.emplace_back(request.body.data<char>(), request.body.size());
      }
      // One sync for the whole group, before any of its answers leaves.
      std::vector<std::string> answers = dispatcher_.HandleGroup(frames);
      for (size_t i = 0; i < group.size(); ++i) {
        group[i].answer = std::move(answers[i]);
        Answer(group[i]);
      }
      // The group may have left work for later (a publication its burst deferred): the next
      // wake-up is due then, not a tick later when no other request comes.
      if (periodic) timeout = std::min(periodic(), tick);
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;
      LOG_ERROR("api: %s", error.what());
    }
  }
}

}  // namespace butterfly
