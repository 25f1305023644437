// ZeroMQ CURVE key files (Z85 text), shared by butterflyd (--curve-keys DIR) and the CLI (-k FILE).
//   DIR/server.key      public=<z85> secret=<z85>   (the daemon's key pair, mode 0600)
//   DIR/server.pub      public=<z85>                (what clients need)
//   DIR/clients/*.pub   public=<z85>                (one authorised client each)
//   client key file     public=<z85> secret=<z85> server=<z85 of the daemon>
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace butterfly {

struct CurveKeyPair {
  std::string public_key;  // 40 Z85 characters
  std::string secret_key;
};

struct ClientKeyFile {
  std::string public_key;
  std::string secret_key;
  std::string server_public;
};

Result<CurveKeyPair> GenerateCurveKeyPair();
bool IsZ85Key(const std::string& text);

Result<ClientKeyFile> ReadClientKeyFile(const std::string& path);
Result<CurveKeyPair> ReadServerKeyFile(const std::string& path);
// The `public=` key of a .pub file.
Result<std::string> ReadPublicKeyFile(const std::string& path);
struct AuthorizedClient {
  std::string file;        // e.g. DIR/clients/admin.key.pub, for the logs
  std::string public_key;  // Z85
};
// Every DIR/clients/*.pub, sorted by file name.
Result<std::vector<AuthorizedClient>> ReadAuthorizedClients(const std::string& dir);

// Writes `text` to `path` with mode `mode`, refusing to overwrite an existing file.
Status WriteNewFile(const std::string& path, const std::string& text, unsigned mode);

}  // namespace butterfly
