#include "analysis.h"

#include <algorithm>
#include <regex>

#include "analysis_expr.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::controllers {

namespace res = client::resources;

namespace {

constexpr size_t kKeptMeasurements = 10;  // Argo Rollouts' default measurement retention
constexpr int64_t kConsecutiveErrorLimit = 4;

// count and limits may be integers or strings ("{{args.n}}" substituted to "3").
int64_t integer(const Json& metric, const char* key, int64_t dflt) {
  const Json& v = client::at(metric, {key});
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) return strings::parseInt(v.get<std::string>()).value_or(dflt);
  return dflt;
}

bool terminal(const std::string& phase) {
  return phase == "Successful" || phase == "Failed" || phase == "Error" || phase == "Inconclusive";
}

}  // namespace

Expected<Json, std::string> substituteArgs(const Json& value, const Json& args) {
  if (value.is_string()) {
    static const std::regex ref(R"(\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\})");
    std::string s = value.get<std::string>(), out;
    std::smatch m;
    auto begin = s.cbegin();
    while (std::regex_search(begin, s.cend(), m, ref)) {
      out.append(begin, m[0].first);
      const Json* found = nullptr;
      for (const auto& a : args)
        if (json::str(a, "name") == m[1].str() && a.contains("value")) found = &a["value"];
      if (!found) return Unexpected("argument " + m[1].str() + " has no value");
      out += found->is_string() ? found->get<std::string>() : found->dump();
      begin = m[0].second;
    }
    out.append(begin, s.cend());
    return Json(out);
  }
  if (value.is_array() || value.is_object()) {
    Json out = value;
    for (auto& [k, v] : out.items()) {
      auto sub = substituteArgs(v, args);
      if (!sub) return sub;
      v = std::move(*sub);
    }
    return out;
  }
  return value;
}

AnalysisRunController::AnalysisRunController(client::InformerFactory& f,
                                             client::EventRecorder& events,
                                             MetricProviders& providers, int workers)
    : Controller("analysisrun", f.client(), f.clock(), workers),
      events_(events),
      providers_(providers),
      runs_(f.informer(res::kAnalysisRuns)) {
  runs_.addHandlers(enqueueHandlers(false));
}

SyncResult AnalysisRunController::sync(const std::string& key) {
  auto slash = key.find('/');
  auto obj = runs_.get(key.substr(0, slash), key.substr(slash + 1));
  if (!obj || isDeleting(*obj)) return SyncResult::ok();
  const Json& run = *obj;
  Json status = at(run, {"status"}).is_object() ? at(run, {"status"}) : Json::object();
  if (terminal(json::str(status, "phase"))) return SyncResult::ok();
  auto now = clock_.now();
  std::string nowText = timefmt::rfc3339(now);
  if (json::str(status, "startedAt").empty()) status["startedAt"] = nowText;
  auto started = timefmt::parseRfc3339(json::str(status, "startedAt")).value_or(now);
  bool terminate = json::boolean(at(run, {"spec"}), "terminate");
  SyncResult result = SyncResult::ok();
  Json results = status["metricResults"].is_array() ? status["metricResults"] : Json::array();
  std::vector<std::string> phases;
  std::string message;
  for (const auto& metric0 : at(run, {"spec", "metrics"})) {
    std::string name = json::str(metric0, "name");
    auto metric = substituteArgs(metric0, at(run, {"spec", "args"}));
    Json* r = nullptr;
    for (auto& x : results)
      if (json::str(x, "name") == name) r = &x;
    if (!r) {
      results.push_back({{"name", name},
                         {"phase", "Running"},
                         {"count", 0},
                         {"successful", 0},
                         {"failed", 0},
                         {"inconclusive", 0},
                         {"error", 0},
                         {"consecutiveError", 0},
                         {"measurements", Json::array()}});
      r = &results.back();
    }
    if (!metric) {
      (*r)["phase"] = "Error";
      (*r)["message"] = metric.error();
    }
    if (!terminal(json::str(*r, "phase")) && !terminate) {
      int64_t interval = argoDurationSeconds(at(*metric, {"interval"})).value_or(0);
      int64_t count = integer(*metric, "count", interval > 0 ? 0 : 1);
      int64_t delay = argoDurationSeconds(at(*metric, {"initialDelay"})).value_or(0);
      Json& ms = (*r)["measurements"];
      std::optional<std::chrono::system_clock::time_point> last;
      if (!ms.empty()) last = timefmt::parseRfc3339(json::str(ms.back(), "finishedAt"));
      auto due =
          last ? *last + std::chrono::seconds(interval) : started + std::chrono::seconds(delay);
      if (due <= now && (count == 0 || json::integer(*r, "count") < count)) {
        Measurement m = providers_.measure(at(*metric, {"provider"}), namespaceOf(run));
        std::string phase = m.phase;
        if (phase.empty()) {
          std::string okExpr = json::str(*metric, "successCondition");
          std::string badExpr = json::str(*metric, "failureCondition");
          std::optional<bool> ok, bad;
          std::string err;
          if (!okExpr.empty()) {
            auto v = evaluateCondition(okExpr, m.value);
            if (v)
              ok = *v;
            else
              err = v.error();
          }
          if (!badExpr.empty() && err.empty()) {
            auto v = evaluateCondition(badExpr, m.value);
            if (v)
              bad = *v;
            else
              err = v.error();
          }
          if (!err.empty()) {
            phase = "Error";
            m.message = err;
          } else if (bad.value_or(false)) {
            phase = "Failed";
          } else if (ok.value_or(false)) {
            phase = "Successful";
          } else if (ok && !bad) {
            phase = "Failed";  // only a successCondition, not met
          } else if (bad && !ok) {
            phase = "Successful";  // only a failureCondition, not met
          } else {
            phase = "Inconclusive";
          }
        }
        Json entry = {{"phase", phase}, {"startedAt", nowText}, {"finishedAt", nowText}};
        if (!m.value.is_null())
          entry["value"] = m.value.is_string() ? m.value : Json(json::dump(m.value));
        if (!m.message.empty()) entry["message"] = m.message;
        ms.push_back(entry);
        while (ms.size() > kKeptMeasurements) ms.erase(ms.begin());
        (*r)["count"] = json::integer(*r, "count") + 1;
        const char* counter = phase == "Successful"     ? "successful"
                              : phase == "Failed"       ? "failed"
                              : phase == "Inconclusive" ? "inconclusive"
                                                        : "error";
        (*r)[counter] = json::integer(*r, counter) + 1;
        (*r)["consecutiveError"] = phase == "Error" ? json::integer(*r, "consecutiveError") + 1 : 0;
        if (!m.message.empty()) (*r)["message"] = m.message;
        last = now;
      }
      int64_t failureLimit = integer(*metric, "failureLimit", 0);
      int64_t inconclusiveLimit = integer(*metric, "inconclusiveLimit", 0);
      int64_t errorLimit = integer(*metric, "consecutiveErrorLimit", kConsecutiveErrorLimit);
      if (json::integer(*r, "failed") > failureLimit) {
        (*r)["phase"] = "Failed";
        (*r)["message"] = "Metric \"" + name + "\" assessed Failed due to failed (" +
                          std::to_string(json::integer(*r, "failed")) + ") > failureLimit (" +
                          std::to_string(failureLimit) + ")";
      } else if (json::integer(*r, "inconclusive") > inconclusiveLimit) {
        (*r)["phase"] = "Inconclusive";
        std::string why = json::str(*r, "message");
        (*r)["message"] = "Metric \"" + name + "\" assessed Inconclusive due to inconclusive (" +
                          std::to_string(json::integer(*r, "inconclusive")) +
                          ") > inconclusiveLimit (" + std::to_string(inconclusiveLimit) + ")" +
                          (why.empty() ? "" : ": " + why);
      } else if (json::integer(*r, "consecutiveError") > errorLimit) {
        (*r)["phase"] = "Error";
      } else if (count > 0 && json::integer(*r, "count") >= count) {
        (*r)["phase"] = "Successful";
      } else {
        auto next = (last ? *last + std::chrono::seconds(interval) : due) - now;
        result.merge(SyncResult::after(
            std::max(std::chrono::milliseconds(50),
                     std::chrono::duration_cast<std::chrono::milliseconds>(next))));
      }
    }
    std::string p = json::str(*r, "phase");
    if (terminate && !terminal(p)) p = (*r)["phase"] = "Successful";
    phases.push_back(p);
    if (p != "Successful" && p != "Running" && message.empty()) message = json::str(*r, "message");
  }
  status["metricResults"] = results;
  auto any = [&](const char* p) {
    return std::find(phases.begin(), phases.end(), p) != phases.end();
  };
  std::string phase = any("Failed")         ? "Failed"
                      : any("Error")        ? "Error"
                      : any("Inconclusive") ? "Inconclusive"
                      : any("Running")      ? "Running"
                                            : "Successful";
  if (json::str(status, "phase") != phase && terminal(phase))
    events_.record(run, phase == "Successful" ? "Normal" : "Warning", "AnalysisRun" + phase,
                   "Analysis Run " + phase + (message.empty() ? "" : ": " + message));
  status["phase"] = phase;
  if (terminate && phase == "Successful") message = "Run Terminated";
  if (!message.empty()) status["message"] = message;
  return result.merge(updateStatus(res::kAnalysisRuns, run, status));
}

}  // namespace podium::controllers
