// File content in messages: marked for the log, hidden from clients.
#include "common/base/file_content.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

TEST(ContentForMessageTest, MarksEscapesAndCuts) {
  EXPECT_EQ(ContentForMessage("lttle"), "\u27e6lttle\u27e7");
  EXPECT_EQ(ContentForMessage(std::string("a\n\xff", 3)), "\u27e6a\\n\\xff\u27e7");
  const std::string long_text(200, 'x');
  EXPECT_EQ(ContentForMessage(long_text),
            "\u27e6" + std::string(kMaxContentBytesInMessage, 'x') + "...\u27e7");
  // A mark inside the bytes cannot close the excerpt early.
  EXPECT_EQ(ContentForMessage("a\u27e7b"), "\u27e6a\\u27e7b\u27e7");
}

TEST(WithoutFileContentTest, HidesEachExcerptAndKeepsTheRest) {
  const std::string message = "entry " + ContentForMessage("secret/one") + " and " +
                              ContentForMessage("two\u27e7\u27e6") + ": truncated";
  EXPECT_EQ(WithoutFileContent(message),
            "entry <file content> and <file content>: truncated");
  EXPECT_EQ(WithoutFileContent("nothing quoted"), "nothing quoted");
  EXPECT_EQ(WithoutFileContent("open \u27e6 never closed"), "open <file content>");
}

std::string NlohmannError(const std::string& text) {
  try {
    (void)nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return e.what();
  }
  return "";
}

TEST(JsonErrorForMessageTest, MarksTheExcerptTheParserQuotes) {
  for (const std::string text :
       {std::string("{\"a\": \"SECRET_BYTES\x01\"}"), std::string("[\"SECRET_BYTES"),
        std::string("[\"it's' SECRET; expected \x02\"]")}) {
    const std::string what = NlohmannError(text);
    ASSERT_NE(what.find("SECRET"), std::string::npos) << what;
    const std::string marked = JsonErrorForMessage(what);
    const std::string hidden = WithoutFileContent(marked);
    EXPECT_EQ(hidden.find("SECRET"), std::string::npos) << hidden;
    EXPECT_NE(hidden.find("last read: <file content>"), std::string::npos) << hidden;
    EXPECT_NE(hidden.find("line 1, column"), std::string::npos) << hidden;
  }
  // Errors that quote nothing come back as they were.
  EXPECT_EQ(JsonErrorForMessage("type must be number, but is string"),
            "type must be number, but is string");
}

}  // namespace
}  // namespace garden
