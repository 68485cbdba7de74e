// What a client may read of an error: the message with the server's file
// system taken out. Paths under a root (a checkpoint root, the Hub cache)
// become root-relative ("pythia-70m/step11/model.safetensors"), a root named
// alone becomes "<root>", and any other absolute path "<server path>"; bytes
// quoted from a file (common/base/file_content.h) become "<file content>".
// The full message stays in the server's log.
#ifndef GARDEN_SERVER_SERVICE_CLIENT_MESSAGE_H_
#define GARDEN_SERVER_SERVICE_CLIENT_MESSAGE_H_

#include <string>
#include <string_view>
#include <vector>

namespace garden {

// `roots` are absolute directories, without a trailing '/'.
std::string ForClient(std::string_view message, const std::vector<std::string>& roots);

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_CLIENT_MESSAGE_H_
