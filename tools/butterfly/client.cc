#include "client.h"

#include <google/protobuf/text_format.h>

#include <iostream>

namespace butterfly::cli {

Client::Client(ClientOptions options) : options_(std::move(options)) {}

void Client::Connect() {
  socket_.emplace(context_, zmq::socket_type::req);
  socket_->set(zmq::sockopt::linger, 0);
  if (!options_.server_public_key.empty()) {
    socket_->set(zmq::sockopt::curve_serverkey, options_.server_public_key);
    socket_->set(zmq::sockopt::curve_publickey, options_.client_public_key);
    socket_->set(zmq::sockopt::curve_secretkey, options_.client_secret_key);
  }
  socket_->connect(options_.endpoint);
}

Result<proto::Messages> Client::RoundTrip(const proto::Messages& request) {
  if (options_.verbose) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(request, &text);
    std::cerr << "# request to " << options_.endpoint << ":\n" << text;
  }
  std::string bytes;
  if (!request.SerializeToString(&bytes)) return Fail("cannot encode the request");
  try {
    // A REQ socket whose answer never came cannot send again: use a fresh one per round trip.
    Connect();
    socket_->send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, options_.timeout);
    if (!(items[0].revents & ZMQ_POLLIN)) {
      socket_.reset();
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
    socket_.reset();
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
