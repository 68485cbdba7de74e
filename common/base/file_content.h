// Bytes of a file quoted in an error message. A shared server's log keeps
// them, for whoever runs it; a client sees "<file content>" in their place
// (server/service/client_message.h), since being allowed to query a
// checkpoint is not being allowed to read it. The marks are the brackets
// U+27E6 and U+27E7, which never occur inside a marked excerpt.
//
//   DataLoss(path, StrCat("byteorder entry holds ", ContentForMessage(text)))
//     log:    ".../model.bin: byteorder entry holds ⟦lttle⟧"
//     client: "pythia-70m/step0/model.bin: byteorder entry holds <file content>"
#ifndef GARDEN_COMMON_BASE_FILE_CONTENT_H_
#define GARDEN_COMMON_BASE_FILE_CONTENT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace garden {

// At most this many bytes of a file go into one message.
inline constexpr size_t kMaxContentBytesInMessage = 64;

// `bytes` marked as file content: escaped as EscapeForMessage does (valid
// UTF-8 for any input), cut to kMaxContentBytesInMessage with "..." after.
std::string ContentForMessage(std::string_view bytes);

// A JSON parser's error text (nlohmann's what()) with the excerpt it quotes
// ("last read: '...'") marked as file content; the rest, which names the
// line, column and what was expected, is kept as it is.
std::string JsonErrorForMessage(std::string_view what);

// `message` with each marked excerpt replaced by "<file content>" (an
// unclosed mark hides the rest of the message).
std::string WithoutFileContent(std::string_view message);

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_FILE_CONTENT_H_
