#include "flags.h"

namespace podium::cli {

std::string Flags::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool hasValue = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      hasValue = true;
    }
    if (switches_.count(name)) {
      if (hasValue && value != "true" && value != "false")
        return "flag --" + name + " takes no value";
      values_[name] = hasValue ? value : "true";
      continue;
    }
    if (!valued_.count(name)) return "unknown flag: --" + name;
    if (!hasValue) {
      if (i + 1 >= args.size()) return "flag --" + name + " needs a value";
      value = args[++i];
    }
    values_[name] = value;
  }
  return "";
}

std::optional<std::string> Flags::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

}  // namespace podium::cli
