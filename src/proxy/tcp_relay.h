#pragma once

// A raw TCP connection through the proxy: connects to one of the Service port's ready
// endpoints (round robin, trying the next on connect failure) and copies bytes both ways,
// passing half-closes on, until both directions have ended.

#include <optional>
#include <vector>

#include "worker.h"

namespace podium::proxy {

class TcpRelay : public Deletable {
 public:
  // Takes ownership of `downstream`, from a client at `srcIp`. `candidates` are tried in
  // order, reached `via` (default: as meshVia says for each). Not `counted`: no metrics (the
  // last hop of inbound mesh traffic, counted by the proxy that sent it).
  static void start(Worker& worker, Socket downstream, std::vector<Endpoint> candidates,
                    MetricLabels labels, uint32_t srcIp, std::optional<Via> via = {},
                    bool counted = true);
  // Takes over two connected sockets (an upgraded HTTP exchange) with bytes already read.
  static void adopt(Worker& worker, Socket downstream, Socket upstream, std::string toUpstream,
                    std::string toDownstream, MetricLabels labels, bool counted = true);
  ~TcpRelay() override;

 private:
  TcpRelay(Worker& worker, Socket downstream, std::vector<Endpoint> candidates,
           MetricLabels labels);
  struct Side : Watcher {
    TcpRelay* relay;
    bool downstream;
    Side(TcpRelay* r, bool d) : relay(r), downstream(d) {}
    void onEvents(uint32_t events) override { relay->onEvents(downstream, events); }
  };
  struct Buffer {
    std::vector<char> data = std::vector<char>(64 * 1024);
    size_t off = 0, len = 0;
    bool eof = false;       // the reading side ended
    bool shutDown = false;  // the end was passed on
    uint64_t total = 0;
  };
  void connectNext();
  void onEvents(bool downstream, uint32_t events);
  // Copies what `from` has to `to` (nullptr: not yet connected); false: a connection failed.
  bool pump(Socket& from, Socket* to, Buffer& buf);
  void finish();

  Worker& worker_;
  Socket down_;
  Socket up_;
  Side downSide_{this, true}, upSide_{this, false};
  std::vector<Endpoint> candidates_;
  size_t next_ = 0;
  bool closed_ = false;
  uint64_t connectTimer_ = 0;
  Buffer toUp_, toDown_;
  MetricLabels labels_;
  uint32_t srcIp_ = 0;
  std::optional<Via> via_;
  bool counted_ = true;
};

}  // namespace podium::proxy
