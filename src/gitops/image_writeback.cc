#include "image_writeback.h"

#include <cstring>
#include <optional>
#include <vector>

#include "podium/common/strings.h"

namespace podium::gitops {

namespace {

struct Lines {
  std::vector<std::string> lines;
  bool finalNewline = true;
  explicit Lines(const std::string& text) {
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) {
        lines.push_back(text.substr(start));
        finalNewline = false;
        break;
      }
      lines.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
  }
  std::string str() const {
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      out += lines[i];
      if (i + 1 < lines.size() || finalNewline) out += '\n';
    }
    return out;
  }
};

size_t indentOf(const std::string& line) {
  size_t i = line.find_first_not_of(' ');
  return i == std::string::npos ? line.size() : i;
}

bool blankOrComment(const std::string& line) {
  size_t i = line.find_first_not_of(" \t");
  return i == std::string::npos || line[i] == '#';
}

// A `key: value` on a line (after an optional "- "): where the value starts and ends, without
// quotes and trailing comment, so that only it is replaced.
struct KeyValue {
  size_t keyAt = 0;  // column of the key
  std::string key;
  size_t valueAt = 0, valueEnd = 0;  // the value's span in the line (inside any quotes)
  bool dash = false;                 // the line starts a sequence item
  std::string value() const {
    return valueEnd > valueAt ? line->substr(valueAt, valueEnd - valueAt) : "";
  }
  const std::string* line = nullptr;
};

std::optional<KeyValue> keyValue(const std::string& line) {
  if (blankOrComment(line)) return std::nullopt;
  KeyValue kv;
  kv.line = &line;
  size_t i = indentOf(line);
  if (line.compare(i, 2, "- ") == 0) {
    kv.dash = true;
    i = line.find_first_not_of(' ', i + 2);
    if (i == std::string::npos) return std::nullopt;
  }
  size_t colon = line.find(':', i);
  if (colon == std::string::npos || (colon + 1 < line.size() && line[colon + 1] != ' '))
    return std::nullopt;
  kv.keyAt = i;
  kv.key = std::string(strings::trim(line.substr(i, colon - i)));
  if (kv.key.empty() || kv.key.find_first_of("#\"'{[") != std::string::npos) return std::nullopt;
  size_t v = line.find_first_not_of(' ', colon + 1);
  if (v == std::string::npos || line[v] == '#') {
    kv.valueAt = kv.valueEnd = line.size();
    return kv;
  }
  if (line[v] == '"' || line[v] == '\'') {
    size_t close = line.find(line[v], v + 1);
    if (close == std::string::npos) return std::nullopt;
    kv.valueAt = v + 1;
    kv.valueEnd = close;
    return kv;
  }
  size_t end = line.find(" #", v);
  if (end == std::string::npos) end = line.size();
  while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
  kv.valueAt = v;
  kv.valueEnd = end;
  return kv;
}

std::string replaced(const std::string& line, const KeyValue& kv, const std::string& value) {
  return line.substr(0, kv.valueAt) + value + line.substr(kv.valueEnd);
}

// "name:tag@digest" -> {name, tag}.
std::pair<std::string, std::string> splitRef(std::string ref) {
  ref = ref.substr(0, ref.find('@'));
  size_t colon = ref.rfind(':');
  if (colon == std::string::npos || ref.find('/', colon) != std::string::npos) return {ref, ""};
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

std::string normalName(std::string name) {
  for (const char* p : {"docker.io/", "index.docker.io/"})
    if (name.rfind(p, 0) == 0) name = name.substr(strlen(p));
  if (name.rfind("library/", 0) == 0) name = name.substr(8);
  return name;
}

// --- the three targets -------------------------------------------------------------------------

Expected<TagEdit, std::string> editYaml(Lines& f, const std::string& image,
                                        const std::string* tag) {
  TagEdit out;
  bool found = false;
  for (auto& line : f.lines) {
    auto kv = keyValue(line);
    if (!kv || kv->key != "image") continue;
    auto [name, old] = splitRef(kv->value());
    if (!sameImage(name, image)) continue;
    if (!found) out.oldTag = old;
    found = true;
    if (tag) line = replaced(line, *kv, name + ":" + *tag);
  }
  if (!found) return Unexpected("no `image: " + image + "` line");
  return out;
}

Expected<TagEdit, std::string> editKustomize(Lines& f, const std::string& image,
                                             const std::string* tag) {
  TagEdit out;
  auto& ls = f.lines;
  size_t images = ls.size();
  for (size_t i = 0; i < ls.size(); ++i)
    if (auto kv = keyValue(ls[i]); kv && kv->keyAt == 0 && !kv->dash && kv->key == "images") {
      images = i;
      break;
    }
  if (images == ls.size()) {
    if (!tag) return out;
    ls.push_back("images:");
    ls.push_back("- name: " + image);
    ls.push_back("  newTag: " + *tag);
    return out;
  }
  // The block: the lines after `images:` that are items of its sequence.
  size_t end = images + 1;
  std::optional<size_t> dashIndent;
  while (end < ls.size()) {
    if (blankOrComment(ls[end])) {
      ++end;
      continue;
    }
    size_t ind = indentOf(ls[end]);
    bool dash = ls[end].compare(ind, 2, "- ") == 0;
    if (ind == 0 && !dash) break;
    if (dash && !dashIndent) dashIndent = ind;
    ++end;
  }
  size_t d = dashIndent.value_or(0);
  for (size_t i = images + 1; i < end; ++i) {
    auto kv = keyValue(ls[i]);
    if (!kv || kv->key != "name" || !sameImage(kv->value(), image)) continue;
    // This item's lines: from its dash to the next dash at the same indent.
    size_t start = i;
    while (start > images + 1 && !(keyValue(ls[start]) && keyValue(ls[start])->dash)) --start;
    size_t stop = start + 1;
    while (stop < end && !(indentOf(ls[stop]) == d && ls[stop].compare(d, 2, "- ") == 0)) ++stop;
    for (size_t j = start; j < stop; ++j)
      if (auto t = keyValue(ls[j]); t && t->key == "newTag") {
        out.oldTag = t->value();
        if (tag) ls[j] = replaced(ls[j], *t, *tag);
        return out;
      }
    if (tag)
      ls.insert(ls.begin() + static_cast<long>(i) + 1,
                std::string(kv->keyAt, ' ') + "newTag: " + *tag);
    return out;
  }
  if (tag) {
    auto at = ls.begin() + static_cast<long>(end);
    at = ls.insert(at, std::string(d, ' ') + "- name: " + image);
    ls.insert(at + 1, std::string(d + 2, ' ') + "newTag: " + *tag);
  }
  return out;
}

Expected<TagEdit, std::string> editHelm(Lines& f, const std::string& key, const std::string* tag) {
  TagEdit out;
  std::vector<std::string> path = strings::split(key, '.');
  std::vector<std::pair<size_t, std::string>> stack;  // (indent, key) of the enclosing mappings
  for (auto& line : f.lines) {
    auto kv = keyValue(line);
    if (!kv || kv->dash) continue;
    while (!stack.empty() && stack.back().first >= kv->keyAt) stack.pop_back();
    stack.emplace_back(kv->keyAt, kv->key);
    if (stack.size() != path.size() || kv->valueAt == line.size()) continue;
    bool same = true;
    for (size_t i = 0; i < path.size(); ++i) same = same && stack[i].second == path[i];
    if (!same) continue;
    out.oldTag = kv->value();
    if (tag) line = replaced(line, *kv, *tag);
    return out;
  }
  return Unexpected("no value at `" + key + "`");
}

Expected<TagEdit, std::string> edit(Lines& f, WriteBackTarget target, const std::string& image,
                                    const std::string* tag, const std::string& helmKey) {
  switch (target) {
    case WriteBackTarget::Kustomize:
      return editKustomize(f, image, tag);
    case WriteBackTarget::Helm:
      return editHelm(f, helmKey, tag);
    case WriteBackTarget::Yaml:
      break;
  }
  return editYaml(f, image, tag);
}

}  // namespace

bool sameImage(const std::string& a, const std::string& b) {
  return normalName(a) == normalName(b);
}

Expected<TagEdit, std::string> setImageTag(const std::string& content, WriteBackTarget target,
                                           const std::string& image, const std::string& tag,
                                           const std::string& helmKey) {
  Lines f(content);
  auto r = edit(f, target, image, &tag, helmKey);
  if (!r) return r;
  r->content = f.str();
  return r;
}

std::string currentImageTag(const std::string& content, WriteBackTarget target,
                            const std::string& image, const std::string& helmKey) {
  Lines f(content);
  auto r = edit(f, target, image, nullptr, helmKey);
  return r ? r->oldTag : "";
}

std::string nextSemver(const std::string& tag) {
  bool v = !tag.empty() && (tag[0] == 'v' || tag[0] == 'V');
  auto parts = strings::split(tag.substr(v ? 1 : 0), '.');
  if (parts.empty() || parts.size() > 3) return "v0.1.0";
  int64_t n[3] = {0, 0, 0};
  for (size_t i = 0; i < parts.size(); ++i) {
    auto x = strings::parseInt(parts[i]);
    if (!x || *x < 0) return "v0.1.0";
    n[i] = *x;
  }
  return std::string(v ? tag.substr(0, 1) : "") + std::to_string(n[0]) + "." +
         std::to_string(n[1]) + "." + std::to_string(n[2] + 1);
}

}  // namespace podium::gitops
