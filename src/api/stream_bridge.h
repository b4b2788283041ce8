// Kubernetes' remote-command protocol carried from a WebSocket client speaking
// v5.channel.k8s.io to a streaming server that speaks SPDY with v4.channel.k8s.io: what
// upstream's API server does (its stream translator) so that kubectl's WebSocket exec and
// attach can end stdin. The runtime's streaming server has no v5, and v4 over WebSocket has no
// way to say "stdin ended"; over SPDY that is a half-closed stream.
//
// Pure protocol state: the transport (http_upgrade.cc) moves the bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "podium/api/http.h"
#include "spdy.h"

namespace podium::api {

class RemoteCommandBridge {
 public:
  // WebSocket channel numbers (the first byte of every binary message).
  static constexpr uint8_t kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4,
                           kClose = 255;

  explicit RemoteCommandBridge(StreamChannels channels);

  struct Output {
    std::string upstream;             // bytes for the SPDY server
    std::vector<std::string> client;  // binary WebSocket messages for the client
    std::string error;                // set when the session cannot go on
  };

  // The SPDY streams the server waits for, in client-go's order: error, stdin, stdout, stderr,
  // resize (with a terminal).
  std::string open();
  // One binary WebSocket message from the client.
  Output fromClient(std::string_view message);
  // Bytes read from the SPDY server.
  Output fromUpstream(std::string_view bytes);

 private:
  spdy::Codec codec_;
  StreamChannels channels_;
  std::map<uint32_t, uint8_t> channelOf_;  // SPDY stream → WebSocket channel
  std::map<uint8_t, uint32_t> streamOf_;   // client → server channels still open
};

}  // namespace podium::api
