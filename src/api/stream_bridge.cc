#include "stream_bridge.h"

namespace podium::api {

RemoteCommandBridge::RemoteCommandBridge(StreamChannels channels) : channels_(channels) {}

std::string RemoteCommandBridge::open() {
  struct Want {
    bool on;
    const char* type;
    uint8_t channel;
  };
  const Want wanted[] = {{true, "error", kError},
                         {channels_.stdin, "stdin", kStdin},
                         {channels_.stdout, "stdout", kStdout},
                         {channels_.stderr && !channels_.tty, "stderr", kStderr},
                         {channels_.tty, "resize", kResize}};
  std::string out;
  uint32_t id = 1;  // streams a client opens have odd ids
  for (const auto& w : wanted) {
    if (!w.on) continue;
    out += codec_.synStream(id, {{"streamtype", w.type}});
    channelOf_[id] = w.channel;
    if (w.channel == kStdin || w.channel == kResize) streamOf_[w.channel] = id;
    id += 2;
  }
  return out;
}

RemoteCommandBridge::Output RemoteCommandBridge::fromClient(std::string_view message) {
  Output out;
  if (message.empty()) return out;
  auto channel = static_cast<uint8_t>(message[0]);
  message.remove_prefix(1);
  if (channel == kClose) {
    // v5: half-close one of the client's channels (kubectl sends ff 00 at the end of stdin).
    if (message.empty()) return out;
    auto it = streamOf_.find(static_cast<uint8_t>(message[0]));
    if (it == streamOf_.end()) return out;
    out.upstream = codec_.data(it->second, {}, true);
    streamOf_.erase(it);
    return out;
  }
  auto it = streamOf_.find(channel);
  if (it != streamOf_.end() && !message.empty()) out.upstream = codec_.data(it->second, message);
  return out;
}

RemoteCommandBridge::Output RemoteCommandBridge::fromUpstream(std::string_view bytes) {
  Output out;
  auto frames = codec_.feed(bytes);
  if (!frames) {
    out.error = "streaming server: " + frames.error();
    return out;
  }
  for (auto& f : *frames) {
    switch (f.type) {
      case spdy::FrameType::kData: {
        auto it = channelOf_.find(f.streamId);
        if (it != channelOf_.end() && !f.data.empty())
          out.client.push_back(std::string(1, static_cast<char>(it->second)) + f.data);
        break;
      }
      case spdy::FrameType::kPing:
        // Pings the server starts have even ids; answer them as spdystream expects.
        if (f.value % 2 == 0) out.upstream += codec_.ping(f.value);
        break;
      case spdy::FrameType::kSynStream:
        out.upstream += codec_.rstStream(f.streamId, spdy::kRefusedStream);
        break;
      default:
        break;  // replies, resets and GOAWAY: the connection's end tells the client
    }
  }
  return out;
}

}  // namespace podium::api
