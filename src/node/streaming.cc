// What the API server asks of the node for a pod: container logs (read from the CRI log files,
// with follow, tail, since, previous, timestamps and limitBytes) and exec, attach and
// port-forward sessions (URLs of containerd's streaming server, which the API server proxies).
#include <fstream>

#include "agent_impl.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::node {

using client::nameOf;
using client::uidOf;

namespace {

// One line of a CRI log file: "<RFC3339Nano> <stdout|stderr> <F|P> <content>".
struct LogLine {
  std::string timestamp;
  std::chrono::system_clock::time_point time;
  std::string content;  // with its newline when the tag is F
};

std::optional<LogLine> parseLogLine(std::string_view raw) {
  auto sp1 = raw.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  auto sp2 = raw.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  auto sp3 = raw.find(' ', sp2 + 1);
  std::string_view tag =
      raw.substr(sp2 + 1, sp3 == std::string_view::npos ? std::string_view::npos : sp3 - sp2 - 1);
  LogLine l;
  l.timestamp = std::string(raw.substr(0, sp1));
  auto t = timefmt::parseRfc3339(l.timestamp);
  if (!t) return std::nullopt;
  l.time = *t;
  l.content = sp3 == std::string_view::npos ? "" : std::string(raw.substr(sp3 + 1));
  if (tag != "P") l.content += '\n';
  return l;
}

class LogStream : public api::ResponseStream {
 public:
  LogStream(std::string path, api::LogOptions options, std::function<bool()> running)
      : path_(std::move(path)), opts_(std::move(options)), running_(std::move(running)) {}

  void start(std::function<void()>) override {}

  bool poll(std::string& out) override {
    std::vector<LogLine> lines = readNew();
    if (first_) {
      first_ = false;
      std::optional<std::chrono::system_clock::time_point> since = opts_.sinceTime;
      if (opts_.sinceSeconds)
        since = std::chrono::system_clock::now() - std::chrono::seconds(*opts_.sinceSeconds);
      if (since) std::erase_if(lines, [&](const LogLine& l) { return l.time < *since; });
      if (opts_.tailLines && *opts_.tailLines >= 0 &&
          lines.size() > static_cast<size_t>(*opts_.tailLines))
        lines.erase(lines.begin(), lines.end() - *opts_.tailLines);
    }
    for (const auto& l : lines) {
      std::string text = opts_.timestamps ? l.timestamp + " " + l.content : l.content;
      if (opts_.limitBytes) {
        int64_t left = *opts_.limitBytes - sent_;
        if (left <= 0) return false;
        if (static_cast<int64_t>(text.size()) > left) text.resize(static_cast<size_t>(left));
      }
      sent_ += static_cast<int64_t>(text.size());
      out += text;
    }
    if (opts_.limitBytes && sent_ >= *opts_.limitBytes) return false;
    if (!opts_.follow) return false;
    // Following ends once the container has stopped and its log is drained.
    if (!running_()) {
      auto rest = readNew();
      for (const auto& l : rest)
        out += opts_.timestamps ? l.timestamp + " " + l.content : l.content;
      return false;
    }
    return true;
  }

  int64_t pollIntervalMs() override { return 100; }
  void cancel() override {}

 private:
  // Complete lines appended since the last read.
  std::vector<LogLine> readNew() {
    std::vector<LogLine> lines;
    std::ifstream f(path_, std::ios::binary);
    if (!f) return lines;
    f.seekg(offset_);
    std::string chunk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t start = 0;
    for (;;) {
      auto nl = chunk.find('\n', start);
      if (nl == std::string::npos) break;
      if (auto l = parseLogLine(std::string_view(chunk).substr(start, nl - start)))
        lines.push_back(std::move(*l));
      start = nl + 1;
    }
    offset_ += static_cast<std::streamoff>(start);
    return lines;
  }

  std::string path_;
  api::LogOptions opts_;
  std::function<bool()> running_;
  std::streamoff offset_ = 0;
  bool first_ = true;
  int64_t sent_ = 0;
};

// Kubernetes' messages for a container that cannot serve a stream.
api::ApiError notRunning(const Json& pod, const std::string& container, const std::string& reason) {
  return api::ApiError::badRequest("container \"" + container + "\" in pod \"" + nameOf(pod) +
                                   "\" is " + reason);
}

bool hasContainer(const Json& pod, const std::string& name) {
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"})
    for (const auto& c : at(pod, {"spec", list}))
      if (json::str(c, "name") == name) return true;
  return false;
}

std::string waitingReason(const Json& pod, const std::string& container) {
  for (const char* list : {"containerStatuses", "initContainerStatuses"})
    for (const auto& s : at(pod, {"status", list}))
      if (json::str(s, "name") == container) {
        std::string r = json::getString(s, {"state", "waiting", "reason"});
        if (!r.empty()) return r;
      }
  return "ContainerCreating";
}

}  // namespace

Expected<std::shared_ptr<api::ResponseStream>, api::ApiError> AgentImpl::logs(
    const Json& pod, const api::LogOptions& o) {
  if (!hasContainer(pod, o.container))
    return Unexpected(api::ApiError::badRequest("container " + o.container +
                                                " is not valid for pod " + nameOf(pod)));
  RuntimePod rt = runtimeFor(uidOf(pod));
  std::string sandboxId;
  if (const auto* sb = rt.readySandbox())
    sandboxId = sb->id();
  else if (!rt.sandboxes.empty())
    sandboxId = rt.sandboxes[0].id();
  const runtime::v1::Container* c =
      o.previous ? rt.previous(sandboxId, o.container) : rt.latest(sandboxId, o.container);
  if (!c) {
    if (o.previous)
      return Unexpected(api::ApiError::badRequest("previous terminated container \"" + o.container +
                                                  "\" in pod \"" + nameOf(pod) + "\" not found"));
    return Unexpected(
        notRunning(pod, o.container, "waiting to start: " + waitingReason(pod, o.container)));
  }
  auto status = cri_->containerStatus(c->id());
  if (!status)
    return Unexpected(api::ApiError::internal("container status: " + status.error().message));
  std::string id = c->id();
  auto running = [this, id] {
    auto s = cri_->containerStatus(id);
    return s && s->state() == runtime::v1::CONTAINER_RUNNING;
  };
  return std::shared_ptr<api::ResponseStream>(
      std::make_shared<LogStream>(status->log_path(), o, running));
}

namespace {
// The running container named `name` in the pod's ready sandbox.
Expected<std::string, api::ApiError> runningContainer(const RuntimePod& rt, const Json& pod,
                                                      const std::string& name) {
  if (!hasContainer(pod, name))
    return Unexpected(
        api::ApiError::badRequest("container " + name + " is not valid for pod " + nameOf(pod)));
  const auto* sb = rt.readySandbox();
  const auto* c = sb ? rt.latest(sb->id(), name) : nullptr;
  if (!c || c->state() != runtime::v1::CONTAINER_RUNNING)
    return Unexpected(api::ApiError::badRequest(
        "unable to upgrade connection: container not found (\"" + name + "\")"));
  return c->id();
}
}  // namespace

Expected<std::string, api::ApiError> AgentImpl::exec(const Json& pod, const api::ExecOptions& o) {
  auto id = runningContainer(runtimeFor(uidOf(pod)), pod, o.container);
  if (!id) return Unexpected(id.error());
  runtime::v1::ExecRequest req;
  req.set_container_id(*id);
  for (const auto& a : o.command) req.add_cmd(a);
  req.set_tty(o.tty);
  req.set_stdin(o.stdin);
  req.set_stdout(o.stdout);
  req.set_stderr(o.stderr && !o.tty);
  auto url = cri_->exec(req);
  if (!url) return Unexpected(api::ApiError::internal("exec: " + url.error().message));
  return *url;
}

Expected<std::string, api::ApiError> AgentImpl::attach(const Json& pod, const api::ExecOptions& o) {
  auto id = runningContainer(runtimeFor(uidOf(pod)), pod, o.container);
  if (!id) return Unexpected(id.error());
  runtime::v1::AttachRequest req;
  req.set_container_id(*id);
  req.set_tty(o.tty);
  req.set_stdin(o.stdin);
  req.set_stdout(o.stdout);
  req.set_stderr(o.stderr && !o.tty);
  auto url = cri_->attach(req);
  if (!url) return Unexpected(api::ApiError::internal("attach: " + url.error().message));
  return *url;
}

Expected<std::string, api::ApiError> AgentImpl::portForward(const Json& pod,
                                                            const std::vector<int32_t>& ports) {
  RuntimePod rt = runtimeFor(uidOf(pod));
  const auto* sb = rt.readySandbox();
  if (!sb)
    return Unexpected(api::ApiError::badRequest("pod " + nameOf(pod) + " has no running sandbox"));
  auto url = cri_->portForward(sb->id(), ports);
  if (!url) return Unexpected(api::ApiError::internal("port-forward: " + url.error().message));
  return *url;
}

}  // namespace podium::node
