#include "podium/store/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "etcd.grpc.pb.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"

namespace podium::store {

namespace pb = etcdserverpb;

namespace {

// The end of the range of keys that start with `prefix` (its last byte incremented).
std::string prefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(end.back() + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

bool compactedError(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
         s.error_message().find("compacted") != std::string::npos;
}

bool futureError(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
         s.error_message().find("future") != std::string::npos;
}

// Errors that mean "try again": the member is gone, the cluster has no leader right now, or it
// did not answer in time.
bool retriable(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return true;
    default: {
      // etcd's own transient answers (code Unknown): a member electing its leader, or one that
      // timed out a request itself ("context deadline exceeded" while it starts).
      const std::string& m = s.error_message();
      for (const char* transient :
           {"leader", "timed out", "deadline exceeded", "too many requests"})
        if (m.find(transient) != std::string::npos) return true;
      return false;
    }
  }
}

Error errorOf(const grpc::Status& s) {
  Errc code = compactedError(s) ? Errc::Compacted
              : futureError(s)  ? Errc::FutureRevision
              : retriable(s)    ? Errc::Unavailable
                                : Errc::Internal;
  return Error{code, "etcd: " + s.error_message(), 0};
}

KeyValue toKv(const pb::KeyValue& kv) {
  return KeyValue{kv.key(), kv.value(), kv.create_revision(), kv.mod_revision()};
}

std::string readAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

pb::Compare compareMod(const std::string& key, int64_t rev) {
  pb::Compare c;
  c.set_key(key);
  c.set_target(pb::Compare::MOD);
  c.set_result(pb::Compare::EQUAL);
  c.set_mod_revision(rev);
  return c;
}

pb::RequestOp rangeOp(const std::string& key) {
  pb::RequestOp op;
  op.mutable_request_range()->set_key(key);
  return op;
}

class EtcdStore;

// One watch: a stream read by its own thread, which resumes after the last revision it saw
// whenever the stream breaks (a member restarts, the leader changes).
class EtcdWatch : public Watch {
 public:
  // Returns once the history up to the store's current revision has been delivered (as a
  // store's watch promises: history first, then live).
  EtcdWatch(EtcdStore& store, std::string prefix, int64_t next, WatchCallback callback)
      : store_(store), prefix_(std::move(prefix)), next_(next), callback_(std::move(callback)) {
    thread_ = std::thread([this] { run(); });
    std::unique_lock<std::mutex> lock(mu_);
    caughtUpCv_.wait_for(lock, std::chrono::seconds(30), [this] { return caughtUp_; });
  }
  ~EtcdWatch() override {
    stopping_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ctx_) ctx_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run();
  // Follows one stream until it ends; false when the watch cannot go on.
  bool follow();

  EtcdStore& store_;
  std::string prefix_;
  int64_t next_;  // the first revision not delivered yet
  WatchCallback callback_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards ctx_, caughtUp_
  grpc::ClientContext* ctx_ = nullptr;
  std::condition_variable caughtUpCv_;
  bool caughtUp_ = false;
  std::thread thread_;
};

class EtcdStore : public Store {
 public:
  explicit EtcdStore(EtcdOptions options) : options_(std::move(options)) {
    std::string target;
    bool allIps = true;
    for (const auto& e : options_.endpoints)
      allIps = allIps && net::parseIpv4(e.substr(0, e.rfind(':'))).has_value();
    if (allIps)
      target = "ipv4:" + strings::join(options_.endpoints, ",");
    else
      target = "dns:///" + options_.endpoints.front();
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (!options_.caFile.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = readAll(options_.caFile);
      if (!options_.certFile.empty()) ssl.pem_cert_chain = readAll(options_.certFile);
      if (!options_.keyFile.empty()) ssl.pem_private_key = readAll(options_.keyFile);
      creds = grpc::SslCredentials(ssl);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(16 << 20);
    // Reconnect to another member quickly when one goes away.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // A few connections, so that many concurrent requests do not queue on one HTTP/2 stream
    // window and one polling thread.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    for (int i = 0; i < kConnections; ++i) {
      channels_.push_back(grpc::CreateCustomChannel(target, creds, args));
      kv_.push_back(pb::KV::NewStub(channels_.back()));
    }
    watch_ = pb::Watch::NewStub(channels_.front());
  }

  const EtcdOptions& options() const { return options_; }
  pb::Watch::Stub& watchStub() { return *watch_; }

  // Calls a unary RPC, again while the cluster is unavailable (up to retryFor). `ambiguous`, when
  // given, is set if an attempt may have been carried out without its answer arriving (a
  // deadline passed or the connection broke mid-call): a write's retry may then find its own
  // earlier effect, which the caller must tell apart from another writer's.
  template <class Req, class Resp, class Method>
  grpc::Status call(Method method, const Req& req, Resp* resp, bool* ambiguous = nullptr) {
    auto until = std::chrono::steady_clock::now() + options_.retryFor;
    auto delay = std::chrono::milliseconds(25);
    while (true) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + options_.requestTimeout);
      ctx.set_wait_for_ready(true);
      grpc::Status s = ((*kv_[next_++ % kv_.size()]).*method)(&ctx, req, resp);
      if (s.ok() || !retriable(s) || std::chrono::steady_clock::now() >= until) return s;
      if (ambiguous) *ambiguous = true;
      PODIUM_LOG(Debug) << "etcd: " << s.error_message() << "; again in " << delay.count() << " ms";
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(100));
    }
  }

  Result<KeyValue> get(const std::string& key) override {
    pb::RangeRequest req;
    req.set_key(key);
    pb::RangeResponse resp;
    auto s = call(&pb::KV::Stub::Range, req, &resp);
    if (!s.ok()) return Unexpected(errorOf(s));
    if (resp.kvs_size() == 0) return Unexpected(Error{Errc::NotFound, "not found: " + key, 0});
    return toKv(resp.kvs(0));
  }

  Result<ListResult> list(const std::string& prefix) override {
    pb::RangeRequest req;
    req.set_key(prefix);
    req.set_range_end(prefixEnd(prefix));
    pb::RangeResponse resp;
    auto s = call(&pb::KV::Stub::Range, req, &resp);
    if (!s.ok()) return Unexpected(errorOf(s));
    ListResult out;
    out.revision = resp.header().revision();
    out.items.reserve(static_cast<size_t>(resp.kvs_size()));
    for (const auto& kv : resp.kvs()) out.items.push_back(toKv(kv));
    return out;
  }

  Result<int64_t> create(const std::string& key, const std::string& value) override {
    pb::TxnRequest txn;
    *txn.add_compare() = compareMod(key, 0);  // the key does not exist
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    *txn.add_failure() = rangeOp(key);
    pb::TxnResponse resp;
    bool ambiguous = false;
    auto s = call(&pb::KV::Stub::Txn, txn, &resp, &ambiguous);
    if (!s.ok()) return Unexpected(errorOf(s));
    if (resp.succeeded()) return resp.header().revision();
    // An earlier attempt that went unanswered created it, and nobody has written it since.
    if (const pb::KeyValue* kv = rangedOf(resp);
        ambiguous && kv && kv->value() == value && kv->create_revision() == kv->mod_revision())
      return kv->mod_revision();
    return Unexpected(Error{Errc::AlreadyExists, "already exists: " + key, currentOf(resp)});
  }

  Result<int64_t> update(const std::string& key, const std::string& value,
                         int64_t expectedModRevision) override {
    pb::TxnRequest txn;
    *txn.add_compare() = compareMod(key, expectedModRevision);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    *txn.add_failure() = rangeOp(key);
    pb::TxnResponse resp;
    bool ambiguous = false;
    auto s = call(&pb::KV::Stub::Txn, txn, &resp, &ambiguous);
    if (!s.ok()) return Unexpected(errorOf(s));
    if (resp.succeeded()) return resp.header().revision();
    // An earlier attempt that went unanswered wrote it (the value is ours, one write later).
    if (const pb::KeyValue* kv = rangedOf(resp);
        ambiguous && kv && kv->value() == value && kv->mod_revision() > expectedModRevision)
      return kv->mod_revision();
    return Unexpected(preconditionFailed(key, resp));
  }

  Result<int64_t> remove(const std::string& key, int64_t expectedModRevision) override {
    pb::TxnRequest txn;
    if (expectedModRevision != 0) {
      *txn.add_compare() = compareMod(key, expectedModRevision);
    } else {
      pb::Compare* exists = txn.add_compare();
      exists->set_key(key);
      exists->set_target(pb::Compare::CREATE);
      exists->set_result(pb::Compare::GREATER);
      exists->set_create_revision(0);
    }
    txn.add_success()->mutable_request_delete_range()->set_key(key);
    *txn.add_failure() = rangeOp(key);
    pb::TxnResponse resp;
    bool ambiguous = false;
    auto s = call(&pb::KV::Stub::Txn, txn, &resp, &ambiguous);
    if (!s.ok()) return Unexpected(errorOf(s));
    if (resp.succeeded()) return resp.header().revision();
    // An earlier attempt that went unanswered removed it.
    if (ambiguous && !rangedOf(resp)) return resp.header().revision();
    return Unexpected(preconditionFailed(key, resp));
  }

  Result<WatchPtr> watch(const std::string& prefix, int64_t afterRevision,
                         WatchCallback callback) override {
    // Refuse what cannot be replayed before starting, as the contract says.
    int64_t current = currentRevision();
    if (afterRevision > current)
      return Unexpected(Error{Errc::FutureRevision,
                              "revision " + std::to_string(afterRevision) + " is in the future",
                              0});
    if (afterRevision < current) {
      pb::RangeRequest probe;
      probe.set_key(prefix);
      probe.set_revision(afterRevision + 1);
      probe.set_count_only(true);
      pb::RangeResponse resp;
      auto s = call(&pb::KV::Stub::Range, probe, &resp);
      if (!s.ok()) return Unexpected(errorOf(s));
    }
    return WatchPtr(new EtcdWatch(*this, prefix, afterRevision + 1, std::move(callback)));
  }

  int64_t currentRevision() override {
    pb::RangeRequest req;
    req.set_key("/");
    req.set_count_only(true);
    pb::RangeResponse resp;
    auto s = call(&pb::KV::Stub::Range, req, &resp);
    return s.ok() ? resp.header().revision() : 0;
  }

  int64_t compactedRevision() override {
    // etcd does not say; a range at revision 1 is refused with the compaction's revision in the
    // message ("required revision has been compacted") — so find it by bisection over what is
    // refused. Rarely called (the watch cache's start).
    int64_t lo = 0, hi = currentRevision();
    while (lo < hi) {
      int64_t mid = lo + (hi - lo + 1) / 2;
      pb::RangeRequest req;
      req.set_key("/");
      req.set_revision(mid);
      req.set_count_only(true);
      pb::RangeResponse resp;
      auto s = call(&pb::KV::Stub::Range, req, &resp);
      if (compactedError(s))
        lo = mid;
      else
        hi = mid - 1;
    }
    return lo;
  }

  Result<int64_t> compact(int64_t revision) override {
    pb::CompactionRequest req;
    req.set_revision(revision);
    pb::CompactionResponse resp;
    auto s = call(&pb::KV::Stub::Compact, req, &resp);
    // Another server compacting as far or further is as good.
    if (!s.ok() && !compactedError(s)) return Unexpected(errorOf(s));
    return revision;
  }

 private:
  // The key as the failed transaction's range read it, or null if it does not exist.
  static const pb::KeyValue* rangedOf(const pb::TxnResponse& resp) {
    if (resp.responses_size() == 0) return nullptr;
    const auto& r = resp.responses(0).response_range();
    return r.kvs_size() == 0 ? nullptr : &r.kvs(0);
  }
  static int64_t currentOf(const pb::TxnResponse& resp) {
    const pb::KeyValue* kv = rangedOf(resp);
    return kv ? kv->mod_revision() : 0;
  }
  static Error preconditionFailed(const std::string& key, const pb::TxnResponse& resp) {
    int64_t current = currentOf(resp);
    if (current == 0) return Error{Errc::NotFound, "not found: " + key, 0};
    return Error{Errc::Conflict, "modified since: " + key, current};
  }

  EtcdOptions options_;
  static constexpr int kConnections = 4;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<pb::KV::Stub>> kv_;
  std::atomic<uint64_t> next_{0};
  std::unique_ptr<pb::Watch::Stub> watch_;
};

void EtcdWatch::run() {
  auto delay = std::chrono::milliseconds(50);
  while (!stopping_) {
    if (!follow()) return;
    if (stopping_) return;
    PODIUM_LOG(Info) << "etcd: watch of " << prefix_ << " broke; resuming from revision " << next_;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

bool EtcdWatch::follow() {
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    ctx_ = &ctx;
  }
  struct Clear {
    EtcdWatch* w;
    ~Clear() {
      std::lock_guard<std::mutex> lock(w->mu_);
      w->ctx_ = nullptr;
    }
  } clear{this};
  auto stream = store_.watchStub().Watch(&ctx);
  pb::WatchRequest req;
  auto* create = req.mutable_create_request();
  // Every key: each revision then has an event, so the replay is known to be complete when
  // the creation's revision has come by (keys outside the prefix are dropped here).
  create->set_key(std::string(1, '\0'));
  create->set_range_end(std::string(1, '\0'));
  create->set_start_revision(next_);
  create->set_prev_kv(true);
  if (!stream->Write(req)) return true;  // broken at once: resume
  pb::WatchResponse resp;
  int64_t replayTo = 0;
  auto caughtUp = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    if (!caughtUp_ && next_ > replayTo) {
      caughtUp_ = true;
      caughtUpCv_.notify_all();
    }
  };
  while (stream->Read(&resp)) {
    if (resp.created()) {
      // Revision 1 is an empty etcd's own (no write, no event).
      replayTo = resp.header().revision() <= 1 ? 0 : resp.header().revision();
      caughtUp();
      continue;
    }
    if (resp.canceled()) {
      if (resp.compact_revision() > 0) {
        // The history this watch needed is gone (the store was unreachable longer than it is
        // kept): changes between are lost to it. Said loudly; the watch goes on from there.
        PODIUM_LOG(Error) << "etcd: watch of " << prefix_ << " lost revisions " << next_ << " to "
                          << resp.compact_revision() - 1 << " (compacted)";
        next_ = resp.compact_revision();
      }
      ctx.TryCancel();
      break;
    }
    if (resp.events_size() == 0) continue;
    std::vector<Event> events;
    events.reserve(static_cast<size_t>(resp.events_size()));
    for (const auto& e : resp.events()) {
      next_ = std::max(next_, e.kv().mod_revision() + 1);
      if (e.kv().key().compare(0, prefix_.size(), prefix_) != 0) continue;
      Event ev;
      if (e.type() == pb::Event::DELETE) {
        ev.type = EventType::Delete;
        ev.kv = KeyValue{e.kv().key(), e.prev_kv().value(), e.prev_kv().create_revision(),
                         e.kv().mod_revision()};
      } else {
        ev.type = EventType::Put;
        ev.kv = toKv(e.kv());
        ev.created = e.kv().create_revision() == e.kv().mod_revision();
      }
      ev.prevValue = e.prev_kv().value();
      events.push_back(std::move(ev));
    }
    if (!events.empty()) callback_(events);
    caughtUp();
  }
  stream->Finish();
  return true;
}

}  // namespace

Expected<EtcdOptions, std::string> parseEtcdUrl(const std::string& url) {
  EtcdOptions o;
  std::string rest;
  if (url.rfind("etcd://", 0) == 0)
    rest = url.substr(7);
  else if (url.rfind("etcds://", 0) == 0)
    rest = url.substr(8);
  else
    return Unexpected("a datastore is etcd://HOST:PORT[,HOST:PORT...], not " + url);
  for (auto& e : strings::split(rest, ',')) {
    std::string ep(strings::trim(e));
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    if (ep.empty()) continue;
    auto colon = ep.rfind(':');
    if (colon == std::string::npos || colon == 0 || !strings::parseInt(ep.substr(colon + 1)))
      return Unexpected("etcd endpoint " + ep + " has no port (HOST:PORT)");
    o.endpoints.push_back(ep);
  }
  if (o.endpoints.empty()) return Unexpected("no etcd endpoint in " + url);
  return o;
}

Result<StorePtr> openEtcdStore(const EtcdOptions& options) {
  if (options.endpoints.empty()) return Unexpected(Error{Errc::Internal, "no etcd endpoints", 0});
  auto s = std::make_unique<EtcdStore>(options);
  pb::RangeRequest req;
  req.set_key("/");
  req.set_count_only(true);
  pb::RangeResponse resp;
  auto status = s->call(&pb::KV::Stub::Range, req, &resp);
  if (!status.ok())
    return Unexpected(Error{Errc::Unavailable,
                            "etcd at " + strings::join(options.endpoints, ",") +
                                " does not answer: " + status.error_message(),
                            0});
  return StorePtr(std::move(s));
}

}  // namespace podium::store
