// ForClient: error messages without the server's file system.
#include "server/service/client_message.h"

#include "common/base/file_content.h"
#include "gtest/gtest.h"

namespace garden {
namespace {

const std::vector<std::string> kRoots = {"/srv/pythia", "/srv/pythia-extra",
                                         "/home/lab/.cache/huggingface/hub"};

TEST(ForClientTest, PathsUnderARootBecomeRootRelative) {
  EXPECT_EQ(ForClient("/srv/pythia/pythia-70m/step11/model.safetensors: truncated", kRoots),
            "pythia-70m/step11/model.safetensors: truncated");
  // The longer root wins where one is a prefix of another's name.
  EXPECT_EQ(ForClient("reading /srv/pythia-extra/a/config.json.", kRoots),
            "reading a/config.json.");
  EXPECT_EQ(ForClient("no tokenizer: looked for \"/srv/pythia/m/step0/tokenizer.json\"",
                      kRoots),
            "no tokenizer: looked for \"m/step0/tokenizer.json\"");
  EXPECT_EQ(ForClient("/home/lab/.cache/huggingface/hub/models--EleutherAI--pythia-70m/"
                      "snapshots/abc/model.safetensors, 3 bytes",
                      kRoots),
            "models--EleutherAI--pythia-70m/snapshots/abc/model.safetensors, 3 bytes");
}

TEST(ForClientTest, OtherAbsolutePathsAndBareRootsAreHidden) {
  EXPECT_EQ(ForClient("/srv/pythia/m/step11/model.safetensors resolves to /etc/passwd, "
                      "outside the checkpoint root /srv/pythia",
                      kRoots),
            "m/step11/model.safetensors resolves to <server path>, outside the checkpoint "
            "root <root>");
  EXPECT_EQ(ForClient("--tokenizer=/opt/t.json (missing)", kRoots),
            "--tokenizer=<server path> (missing)");
}

TEST(ForClientTest, SlashesThatAreNoPathsStay) {
  for (const char* kept : {"pythia/70m/deduped", "https://huggingface.co/EleutherAI/x",
                           "bytes 1/2 done", "step 5 of 154", "range (0, 1]", "a / b"}) {
    EXPECT_EQ(ForClient(kept, kRoots), kept);
  }
}

TEST(ForClientTest, FileContentIsHidden) {
  EXPECT_EQ(ForClient("/srv/pythia/m/step0/model.bin: byteorder entry holds " +
                          ContentForMessage("/etc/shadow secret") + ", not \"little\"",
                      kRoots),
            "m/step0/model.bin: byteorder entry holds <file content>, not \"little\"");
}

}  // namespace
}  // namespace garden
