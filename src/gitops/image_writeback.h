#pragma once

// Argo CD Image Updater's git write-back, as text edits that touch only the line holding the
// tag: comments, quoting, order and indentation of everything else stay as they were.
//   - Plain YAML: every `image: NAME[:TAG][@DIGEST]` whose name is the image gets the new tag.
//   - Kustomize: the `images:` entry named for the image gets `newTag:` (added when missing,
//     as is the entry itself).
//   - Helm values: the scalar at a dotted key path (`image.tag` by default).

#include <string>

#include "podium/common/expected.h"

namespace podium::gitops {

enum class WriteBackTarget { Yaml, Kustomize, Helm };

struct TagEdit {
  std::string content;  // the file after the edit (the same text when the tag was already set)
  std::string oldTag;   // the tag it had ("" when it had none)
};

// Sets `image`'s tag to `tag` in `content`. Fails, saying what was looked for, when the file
// has nothing to edit (no such image line, or no such values key).
Expected<TagEdit, std::string> setImageTag(const std::string& content, WriteBackTarget target,
                                           const std::string& image, const std::string& tag,
                                           const std::string& helmKey = "image.tag");

// The tag an image has in `content` ("" when it names none): what the next semver counts from.
std::string currentImageTag(const std::string& content, WriteBackTarget target,
                            const std::string& image, const std::string& helmKey = "image.tag");

// The next patch version after `tag` ("v1.2.3" -> "v1.2.4", "1.0" -> "1.0.1"); "v0.1.0" when
// `tag` is not a version.
std::string nextSemver(const std::string& tag);

// Whether two image names are the same image ("nginx", "docker.io/library/nginx").
bool sameImage(const std::string& a, const std::string& b);

}  // namespace podium::gitops
