#pragma once

#include <string>
#include <vector>

namespace podium::cli {

// Each returns the process exit code.
int serverCommand(const std::vector<std::string>& args);
int agentCommand(const std::vector<std::string>& args);
int imageCommand(const std::vector<std::string>& args);
int appCommand(const std::vector<std::string>& args);
int credentialsCommand(const std::vector<std::string>& args);
int versionCommand(const std::vector<std::string>& args);

}  // namespace podium::cli
