#include "client.h"

#include <google/protobuf/text_format.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <zmq_addon.hpp>

#include "core/api_limits.h"

namespace butterfly::cli {

Client::Client(ClientOptions options) : options_(std::move(options)) {}

void Client::Connect() {
  Disconnect();
  socket_.emplace(context_, zmq::socket_type::req);
  socket_->set(zmq::sockopt::linger, 0);
  if (!options_.server_public_key.empty()) {
    socket_->set(zmq::sockopt::curve_serverkey, options_.server_public_key);
    socket_->set(zmq::sockopt::curve_publickey, options_.client_public_key);
    socket_->set(zmq::sockopt::curve_secretkey, options_.client_secret_key);
  }
  // Handshake failures are only visible to the monitor: without it a refused client would just
  // wait for its timeout.
  std::string monitor_endpoint = "inproc://butterfly-cli-monitor-" + std::to_string(++monitors_);
  if (zmq_socket_monitor(socket_->handle(), monitor_endpoint.c_str(),
                         ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
    throw zmq::error_t();
  }
  monitor_.emplace(context_, zmq::socket_type::pair);
  monitor_->set(zmq::sockopt::linger, 0);
  monitor_->connect(monitor_endpoint);
  socket_->connect(options_.endpoint);
}

void Client::Disconnect() {
  monitor_.reset();
  socket_.reset();
}

std::optional<std::string> Client::HandshakeFailure() {
  std::vector<zmq::message_t> event;
  if (!zmq::recv_multipart(*monitor_, std::back_inserter(event)) || event.empty() ||
      event[0].size() < 6) {
    return std::nullopt;
  }
  uint16_t id;
  uint32_t value;
  std::memcpy(&id, event[0].data(), sizeof(id));
  std::memcpy(&value, static_cast<const char*>(event[0].data()) + 2, sizeof(value));
  const std::string& endpoint = options_.endpoint;
  bool curve = !options_.server_public_key.empty();
  if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    return "butterflyd at " + endpoint + " refused this client's CURVE key (status " +
           std::to_string(value) +
           "): its public key is not among the daemon's authorised keys (<curve-keys>/clients/)";
  }
  char protocol_error[40];
  std::snprintf(protocol_error, sizeof(protocol_error), "ZMTP protocol error 0x%x", value);
  std::string detail = id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                           ? protocol_error
                           : std::string(zmq_strerror(static_cast<int>(value)));
  // Which side hangs up first decides whether the precise "mechanism mismatch" or a bare broken
  // pipe is seen, so without a key any failed handshake means the daemon wants one.
  if (!curve) {
    return "butterflyd at " + endpoint + " refused the handshake (" + detail +
           "): it requires CURVE authentication: pass -k/--key with a key file from "
           "`butterfly keygen client`";
  }
  if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
      value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    return "butterflyd at " + endpoint + " does not use CURVE: run without -k/--key";
  }
  return "the CURVE handshake with " + endpoint + " failed (" + detail +
         "): is the server key in the -k/--key file this daemon's, and does it use CURVE?";
}

Result<proto::Messages> Client::RoundTrip(const proto::Messages& request) {
  if (options_.verbose) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(request, &text);
    std::cerr << "# request to " << options_.endpoint << ":\n" << text;
  }
  std::string bytes;
  if (!request.SerializeToString(&bytes)) return Fail("cannot encode the request");
  if (bytes.size() > kMaxRequestFrameBytes) {
    return Fail("the request is " + std::to_string(bytes.size()) +
                " bytes, over butterflyd's limit of " +
                std::to_string(kMaxRequestFrameBytes >> 20) +
                " MiB per request (it would be refused, or above " +
                std::to_string(kMaxReceivedFrameBytes >> 20) +
                " MiB dropped unanswered): send it in smaller parts; nothing was sent");
  }
  try {
    // A REQ socket whose answer never came cannot send again: use a fresh one per round trip.
    Connect();
    socket_->send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                               {monitor_->handle(), 0, ZMQ_POLLIN, 0}};
    auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    while (!(items[0].revents & ZMQ_POLLIN)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      zmq::poll(items, 2, left);
      if (items[1].revents & ZMQ_POLLIN) {
        if (auto failure = HandshakeFailure()) {
          Disconnect();
          return Fail(*failure);
        }
      }
    }
    if (!(items[0].revents & ZMQ_POLLIN)) {
      Disconnect();
      return Fail("no answer from " + options_.endpoint + " within " +
                  std::to_string(options_.timeout.count()) +
                  " ms (is butterflyd running there? does it need -k/--key?)");
    }
    zmq::message_t reply;
    if (!socket_->recv(reply, zmq::recv_flags::none)) return Fail("no answer received");
    proto::Messages answer;
    if (!answer.ParseFromArray(reply.data(), static_cast<int>(reply.size()))) {
      return Fail("the answer from " + options_.endpoint + " is not a Butterfly message");
    }
    if (options_.verbose) {
      std::string text;
      google::protobuf::TextFormat::PrintToString(answer, &text);
      std::cerr << "# answer:\n" << text;
    }
    return answer;
  } catch (const zmq::error_t& error) {
    Disconnect();
    return Fail("cannot talk to '" + options_.endpoint + "': " + error.what());
  }
}

proto::Messages SingleRequest(const MessageV0_Request& request) {
  proto::Messages batch;
  proto::Message* message = batch.add_messages();
  message->set_revision(0);
  *message->mutable_message_0()->mutable_request() = request;
  return batch;
}

}  // namespace butterfly::cli
