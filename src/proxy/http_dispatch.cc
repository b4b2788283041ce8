// Routing and dispatch of one request: the route and its destination, mirrors, trace headers,
// and the hand-off of HTTP/2 prior-knowledge connections.
#include "http_conn_impl.h"

namespace podium::proxy::detail {

// --- routing -------------------------------------------------------------------------------

void Conn::mirror(const RouteDestination& m) {
  Target t;
  if (!findTarget(*config_, source(), &m, m.host, m.port, &t).empty() || t.endpoints.empty())
    return;
  const Endpoint* e =
      t.endpoints[static_cast<size_t>(uniform(t.endpoints.size())) % t.endpoints.size()];
  http1::Head h = req_;
  h.set("host", hostOnly(req_.header("host")) + "-shadow");  // Envoy's mark on shadowed requests
  h.set("connection", "close");
  bool ingress = ingressPort_ != 0;
  Shadow::start(worker_, *e, meshVia(*config_, src_, ingress, *e, t.policy),
                http1::serializeRequest(h) + body_,
                labelsFor(*config_, src_, t.service, e, ingress, t.policy).render(), requestBytes_);
}

bool Conn::routeRequest() {
  originalPath_ = req_.target;
  proxy::routeRequest(*config_, req_, source_, &routed_);
  route_ = routed_.route;
  dest_ = routed_.dest;
  target_ = std::move(routed_.target);
  gateway_ = routed_.gateway;
  if (routed_.localStatus == 0) return true;
  localReply(routed_.localStatus, routed_.localBody, routed_.localFlags, false,
             routed_.localHeaders);
  return false;
}

void Conn::handOffToH2() {
  closed_ = true;
  cancelTimer(timer_);
  worker_.loop().remove(client_.fd());
  worker_.loop().destroyLater(this);
  startH2Connection(worker_, std::move(client_), std::move(in_), source());
}

void Conn::dispatch() {
  servedAny_ = true;
  config_ = worker_.state().config();  // a new snapshot applies from the next request
  target_ = Target{};
  resp_ = http1::Head{};
  flags_ = "-";
  status_ = 0;
  attempts_ = 0;
  tried_.clear();
  upstreamHost_ = "-";
  gateway_ = ingressPort_ ? "" : "mesh";
  if (!req_.has("x-request-id")) req_.set("x-request-id", strings::uuid4());
  // HTTP/1.0 may leave Host out; it is forwarded as HTTP/1.1, which needs one.
  if (!req_.has("host")) req_.set("host", svcName_.empty() ? "localhost" : svcName_ + "." + svcNs_);
  trace_ = continueTrace(req_, site().rule.samplingPercent);
  if (inbound_) {
    // STRICT is checked when a connection comes in, and again on each request: a plaintext
    // connection accepted under PERMISSIVE (and pooled by the sender) ends with the policy, as
    // Envoy drains a changed listener's connections.
    if (!principal_ && config_->mesh().mode(inboundPod_, inboundPod_.port) == MtlsMode::Strict) {
      worker_.state().metrics.mtlsFailure("server", "plaintext");
      closeNow();
      return;
    }
    static const TrafficPolicy kInboundPolicy;
    originalPath_ = req_.target;
    target_.endpoints = {&inboundPod_};
    target_.policy = &kInboundPolicy;
    target_.cluster = "inbound|" + std::to_string(inboundPod_.port) + "||";
    route_ = nullptr;
    dest_ = nullptr;
    // Envoy's record of the client's proven identity, for the workload.
    if (principal_)
      req_.set("x-forwarded-client-cert", "By=spiffe://" +
                                              inboundPod_.principal(config_->mesh().trustDomain()) +
                                              ";URI=spiffe://" + *principal_);
    else
      req_.remove("x-forwarded-client-cert");
  } else if (!routeRequest()) {
    return;
  }
  const HttpRoute* r = route_;
  auto go = [this] {
    const HttpRoute* r = route_;
    if (r && r->abortPercent > 0 && uniform(100) < r->abortPercent) {
      localReply(r->abortStatus, "fault filter abort", "FI", false);
      return;
    }
    if (r) {
      applyOps(req_, r->requestHeaders);
      if (dest_) applyOps(req_, dest_->requestHeaders);
    }
    std::string xff = req_.header("x-forwarded-for");
    std::string client = net::formatIpv4(src_);
    req_.set("x-forwarded-for", xff.empty() ? client : xff + ", " + client);
    if (!req_.has("x-forwarded-proto"))
      req_.set("x-forwarded-proto", source_.tls ? "https" : "http");
    if (r && r->timeoutMs > 0)
      routeTimer_ = worker_.loop().after(r->timeoutMs, [this] {
        routeTimer_ = 0;
        if (state_ == State::Upstream) localReply(504, "upstream request timeout", "UT", false);
      });
    if (r && r->mirror && uniform(100) < r->mirrorPercent) mirror(*r->mirror);
    state_ = State::Upstream;
    attempt();
  };
  if (r && r->delayPercent > 0 && r->delayMs > 0 && uniform(100) < r->delayPercent) {
    flags_ = "DI";
    delayTimer_ = worker_.loop().after(r->delayMs, [this, go] {
      delayTimer_ = 0;
      std::string keep = flags_;
      go();
      if (flags_ == "-") flags_ = keep;
    });
    return;
  }
  go();
}

}  // namespace podium::proxy::detail
