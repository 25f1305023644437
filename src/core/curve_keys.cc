#include "core/curve_keys.h"

#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

namespace butterfly {
namespace {

// Reads `key=value` lines (comments start with #).
Result<std::map<std::string, std::string>> ReadKeyValues(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Fail("cannot read key file '" + path + "': " + std::strerror(errno));
  std::map<std::string, std::string> values;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto equals = line.find('=');
    if (equals == std::string::npos)
      return Fail("key file '" + path + "': '" + line + "' is not key=value");
    std::string key = line.substr(0, equals);
    std::string value = line.substr(equals + 1);
    while (!key.empty() && key.back() == ' ') key.pop_back();
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.pop_back();
    values[key] = value;
  }
  return values;
}

Result<std::string> KeyField(const std::map<std::string, std::string>& values,
                             const std::string& path, const std::string& key) {
  auto it = values.find(key);
  if (it == values.end()) return Fail("key file '" + path + "' has no " + key + "= line");
  if (!IsZ85Key(it->second)) {
    return Fail("key file '" + path + "': " + key + " is not a 40-character Z85 CURVE key");
  }
  return it->second;
}

}  // namespace

bool IsZ85Key(const std::string& text) {
  if (text.size() != 40) return false;
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, text.c_str()) != nullptr;
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[41];
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Fail(std::string("cannot generate a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                " (is libzmq built with libsodium?)");
  }
  return CurveKeyPair{public_key, secret_key};
}

Result<ClientKeyFile> ReadClientKeyFile(const std::string& path) {
  auto values = ReadKeyValues(path);
  if (!values) return Error{values.error()};
  ClientKeyFile keys;
  for (auto [field, name] : {std::pair{&keys.public_key, "public"},
                             {&keys.secret_key, "secret"},
                             {&keys.server_public, "server"}}) {
    auto key = KeyField(*values, path, name);
    if (!key) return Error{key.error()};
    *field = *key;
  }
  return keys;
}

Result<CurveKeyPair> ReadServerKeyFile(const std::string& path) {
  auto values = ReadKeyValues(path);
  if (!values) return Error{values.error()};
  auto public_key = KeyField(*values, path, "public");
  if (!public_key) return Error{public_key.error()};
  auto secret_key = KeyField(*values, path, "secret");
  if (!secret_key) return Error{secret_key.error()};
  return CurveKeyPair{*public_key, *secret_key};
}

Result<std::string> ReadPublicKeyFile(const std::string& path) {
  auto values = ReadKeyValues(path);
  if (!values) return Error{values.error()};
  return KeyField(*values, path, "public");
}

Result<std::vector<AuthorizedClient>> ReadAuthorizedClients(const std::string& dir) {
  std::vector<AuthorizedClient> keys;
  std::error_code error;
  std::filesystem::directory_iterator it(dir + "/clients", error);
  if (error) return Fail("cannot read '" + dir + "/clients': " + error.message());
  for (const auto& entry : it) {
    if (entry.path().extension() != ".pub") continue;
    auto key = ReadPublicKeyFile(entry.path().string());
    if (!key) return Error{key.error()};
    keys.push_back({entry.path().string(), *key});
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.file < b.file; });
  return keys;
}

Status WriteNewFile(const std::string& path, const std::string& text, unsigned mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Fail("cannot create '" + path + "': " + std::strerror(errno));
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = fsync(fd) == 0 && ok;
  close(fd);
  if (!ok) return Fail("cannot write '" + path + "'");
  return Ok();
}

}  // namespace butterfly
