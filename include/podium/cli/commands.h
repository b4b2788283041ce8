#pragma once

// The subcommands of `podium` (src/main.cc picks one by its first argument).

#include <string>
#include <vector>

namespace podium::cli {

// Each returns the process exit code.
int serverCommand(const std::vector<std::string>& args);
int agentCommand(const std::vector<std::string>& args);
int controllersCommand(const std::vector<std::string>& args);
int imageCommand(const std::vector<std::string>& args);
int appCommand(const std::vector<std::string>& args);
int rolloutCommand(const std::vector<std::string>& args);
int credentialsCommand(const std::vector<std::string>& args);
int versionCommand(const std::vector<std::string>& args);

}  // namespace podium::cli
