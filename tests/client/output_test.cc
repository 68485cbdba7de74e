// Every renderer of the garden CLI, format by format, against the exact
// bytes it must print: scripts parse these, so a changed byte is a broken
// contract.
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>

#include "absl/functional/function_ref.h"
#include "client/output/audit.h"
#include "client/output/bifurcation.h"
#include "client/output/catalog.h"
#include "client/output/csv.h"
#include "client/output/format.h"
#include "client/output/histogram.h"
#include "client/output/json.h"
#include "client/output/language_model.h"
#include "client/output/msd.h"
#include "client/output/perplexity.h"
#include "client/output/progress.h"
#include "garden/v1/garden.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

template <typename Message>
Message Parse(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message))
      << text;
  return message;
}

// What a renderer of a whole response prints: render(args..., out).
template <typename Render, typename... Args>
std::string Printed(Render render, const Args&... args) {
  std::ostringstream out;
  render(args..., out);
  return out.str();
}

// What a streaming renderer, made with (args..., out), prints while
// feed(renderer) hands it messages (and finishes it, or not).
template <typename Renderer, typename... Args>
std::string Fed(absl::FunctionRef<void(Renderer&)> feed, const Args&... args) {
  std::ostringstream out;
  Renderer renderer(args..., out);
  feed(renderer);
  return out.str();
}

// ------------------------------------------------------------ helpers

TEST(FormatTest, NamesMapToFormats) {
  EXPECT_EQ(FormatFromName("json"), Format::kJson);
  EXPECT_EQ(FormatFromName("jsonl"), Format::kJsonl);
  EXPECT_EQ(FormatFromName("csv"), Format::kCsv);
  EXPECT_EQ(FormatFromName("table"), Format::kTable);
  EXPECT_EQ(FormatFromName("text"), Format::kText);
}

TEST(JsonTest, NonFiniteNumbersAreNull) {
  EXPECT_EQ(DumpJson(JsonNumber(kNaN)), "null");
  EXPECT_EQ(DumpJson(JsonNumber(kInf)), "null");
  EXPECT_EQ(DumpJson(JsonNumber(-kInf)), "null");
  EXPECT_EQ(DumpJson(JsonNumber(1.5)), "1.5");
  EXPECT_EQ(DumpJson(JsonNumber(2)), "2.0");
}

TEST(JsonTest, BadUtf8IsReplacedNotThrown) {
  EXPECT_EQ(DumpJson(nlohmann::json("a\xff" "b")), "\"a\xEF\xBF\xBD" "b\"");
}

TEST(JsonTest, WriteJsonEndsTheLine) {
  std::ostringstream one_line, indented;
  WriteJson({{"b", 1}, {"a", {1, 2}}}, one_line);
  WriteJson({{"b", 1}, {"a", {1, 2}}}, indented, 2);
  EXPECT_EQ(one_line.str(), "{\"a\":[1,2],\"b\":1}\n");
  EXPECT_EQ(indented.str(), "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": 1\n}\n");
}

TEST(CsvTest, ShortestRoundTrip) {
  EXPECT_EQ(CsvNumber(0.1), "0.1");
  EXPECT_EQ(CsvNumber(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(CsvNumber(0.0085832455570868087), "0.008583245557086809");
  EXPECT_EQ(CsvNumber(-1e-5), "-1e-05");
  EXPECT_EQ(CsvNumber(123456789), "123456789");
  EXPECT_EQ(CsvNumber(0), "0");
  EXPECT_EQ(CsvNumber(kNaN), "nan");
  EXPECT_EQ(CsvNumber(kInf), "inf");
  EXPECT_EQ(CsvNumber(-kInf), "-inf");
}

// Everything `write` puts into a temporary file.
template <typename Write>
std::string Captured(Write write) {
  std::FILE* file = std::tmpfile();
  write(file);
  std::fflush(file);
  std::string bytes;
  std::rewind(file);
  for (int c; (c = std::fgetc(file)) != EOF;) bytes.push_back(static_cast<char>(c));
  std::fclose(file);
  return bytes;
}

TEST(ProgressBarTest, DrawsAndErasesInPlace) {
  EXPECT_EQ(Captured([](std::FILE* f) {
              ProgressBar bar(true, f);
              bar.Update(3, 10, "step 8");
              bar.Update(10, 10, "done");
              bar.Clear();
              bar.Clear();  // nothing left to erase
            }),
            "\r[#########.....................] 3/10 step 8\x1b[K"
            "\r[##############################] 10/10 done\x1b[K"
            "\r\x1b[K");
}

TEST(ProgressBarTest, ErasedWhenDestroyed) {
  EXPECT_EQ(Captured([](std::FILE* f) {
              ProgressBar bar(true, f);
              bar.Update(0, 2, "scanning");
            }),
            "\r[..............................] 0/2 scanning\x1b[K\r\x1b[K");
}

TEST(ProgressBarTest, SilentWhenDisabledOrEmpty) {
  EXPECT_EQ(Captured([](std::FILE* f) {
              ProgressBar off(false, f);
              off.Update(1, 2, "x");
              ProgressBar empty(true, f);
              empty.Update(0, 0, "x");
            }),
            "");
}

// ------------------------------------------------------------ catalog

pb::ListModelsResponse Models() {
  return Parse<pb::ListModelsResponse>(R"pb(
    models {
      model { suite: "pythia" size: "70m" variant: "deduped" }
      steps: [ 0, 1, 2 ]
      repo_id: "EleutherAI/pythia-70m-deduped"
      layout: "plain"
      missing_from_schedule: 4
    }
    models {
      model { suite: "fortune" size: "micro" variant: "standard" }
      layout: "hf-cache"
    })pb");
}

pb::ListTensorsResponse Tensors() {
  return Parse<pb::ListTensorsResponse>(R"pb(
    checkpoint {
      model { suite: "pythia" size: "70m" variant: "deduped" }
      step: 8
    }
    tensors {
      name: "embed_out.weight"
      dtype: "F16"
      shape: [ 512, 64 ]
      num_bytes: 65536
      file: "model.safetensors"
    })pb");
}

pb::ListDatasetsResponse Datasets() {
  return Parse<pb::ListDatasetsResponse>(
      R"pb(datasets { name: "lambada" examples: 5153 }
           datasets { name: "tiny" examples: 3 })pb");
}

TEST(CatalogTest, EveryListingInEveryFormat) {
  const struct {
    std::string listing, printed, expected;
  } cases[] = {
      {"models json", Printed(RenderModels, Models(), Format::kJson),
       R"({
  "models": [
    {
      "layout": "plain",
      "missing_from_schedule": [
        4
      ],
      "name": "pythia-70m-deduped",
      "repo_id": "EleutherAI/pythia-70m-deduped",
      "run": "",
      "size": "70m",
      "steps": [
        0,
        1,
        2
      ],
      "suite": "pythia",
      "variant": "deduped"
    },
    {
      "layout": "hf-cache",
      "missing_from_schedule": [],
      "name": "fortune-micro",
      "repo_id": "",
      "run": "",
      "size": "micro",
      "steps": [],
      "suite": "fortune",
      "variant": "standard"
    }
  ]
}
)"},
      {"models table", Printed(RenderModels, Models(), Format::kTable),
       "MODEL                        SIZE     VARIANT     STEPS  RANGE    "
       "          LAYOUT\n"
       "pythia-70m-deduped           70m      deduped         3  0..2     "
       "          plain\n"
       "fortune-micro                micro    standard        0  -        "
       "          hf-cache\n"},
      {"tensors json", Printed(RenderTensors, Tensors(), Format::kJson),
       R"({
  "run": "",
  "size": "70m",
  "step": 8,
  "suite": "pythia",
  "tensors": [
    {
      "dtype": "F16",
      "file": "model.safetensors",
      "name": "embed_out.weight",
      "num_bytes": 65536,
      "shape": [
        512,
        64
      ]
    }
  ],
  "variant": "deduped"
}
)"},
      {"tensors table", Printed(RenderTensors, Tensors(), Format::kTable),
       "TENSOR                                               DTYPE SHAPE  "
       "                 BYTES  FILE\n"
       "embed_out.weight                                     F16   [512, "
       "64]               65536  model.safetensors\n"},
      {"datasets json", Printed(RenderDatasets, Datasets(), Format::kJson),
       "{\"datasets\":[{\"examples\":5153,\"name\":\"lambada\"},"
       "{\"examples\":3,\"name\":\"tiny\"}]}\n"},
      {"datasets table", Printed(RenderDatasets, Datasets(), Format::kTable),
       "lambada                      5153 examples\n"
       "tiny                            3 examples\n"},
  };
  for (const auto& [listing, printed, expected] : cases) {
    EXPECT_EQ(printed, expected) << listing;
  }
}

// ---------------------------------------------------------- histogram

pb::HistogramFrame FirstFrame() {
  pb::HistogramFrame f = Parse<pb::HistogramFrame>(R"pb(
    step: 8 lo: -1 hi: 1 counts: [ 1, 0, 3, 8 ] underflow: 0 overflow: 2
    n: 12 mean: 0.25 std: 0.5 min: -0.75 max: 1 kurtosis: -1.5 nan: 1
    dtype: "float16" shape: [ 3, 4 ] index: 0 total: 2)pb");
  f.set_skewness(kNaN);  // undefined: every finite value equal, say
  return f;
}

pb::HistogramFrame SecondFrame() {
  return Parse<pb::HistogramFrame>(R"pb(
    step: 16 lo: -1 hi: 1 counts: [ 2, 1, 1, 0 ] n: 4 mean: 0.1
    std: 0.3333333333333333 min: -1e-05 max: 123456.789 skewness: 0.5
    kurtosis: 2 dtype: "float16" shape: [ 3, 4 ] index: 1 total: 2)pb");
}

std::string RenderFrames(Format format, bool label_models) {
  return Fed<HistogramRenderer>(
      [](HistogramRenderer& renderer) {
        renderer.Frame(FirstFrame(), "pythia-70m");
        renderer.Frame(SecondFrame(), "pythia-70m-deduped");
      },
      format, label_models);
}

TEST(HistogramTest, Jsonl) {
  EXPECT_EQ(RenderFrames(Format::kJsonl, false),
            "{\"counts\":[1,0,3,8],\"dtype\":\"float16\",\"hi\":1.0,"
            "\"kurtosis\":-1.5,\"lo\":-1.0,\"max\":1.0,\"mean\":0.25,"
            "\"min\":-0.75,\"n\":12,\"nan\":1,\"neginf\":0,\"overflow\":2,"
            "\"posinf\":0,\"shape\":[3,4],\"skewness\":null,\"std\":0.5,"
            "\"step\":8,\"underflow\":0}\n"
            "{\"counts\":[2,1,1,0],\"dtype\":\"float16\",\"hi\":1.0,"
            "\"kurtosis\":2.0,\"lo\":-1.0,\"max\":123456.789,\"mean\":0.1,"
            "\"min\":-1e-05,\"n\":4,\"nan\":0,\"neginf\":0,\"overflow\":0,"
            "\"posinf\":0,\"shape\":[3,4],\"skewness\":0.5,"
            "\"std\":0.3333333333333333,\"step\":16,\"underflow\":0}\n");
}

TEST(HistogramTest, JsonlNamesTheModelWhenComparing) {
  const std::string out = RenderFrames(Format::kJsonl, true);
  EXPECT_NE(out.find("\"min\":-0.75,\"model\":\"pythia-70m\",\"n\":12"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"min\":-1e-05,\"model\":\"pythia-70m-deduped\",\"n\":4"),
            std::string::npos)
      << out;
}

TEST(HistogramTest, CsvAndTable) {
  const struct {
    Format format;
    std::string name, expected;
  } cases[] = {
      {Format::kCsv, "csv",
       "step,lo,hi,n,mean,std,min,max,skewness,kurtosis,underflow,overflow,"
       "nan,posinf,neginf,bin0,bin1,bin2,bin3\n"
       "8,-1,1,12,0.25,0.5,-0.75,1,nan,-1.5,0,2,1,0,0,1,0,3,8\n"
       "16,-1,1,4,0.1,0.3333333333333333,-1e-05,123456.789,0.5,2,0,0,0,0,0,"
       "2,1,1,0\n"},
      {Format::kTable, "table",
       "    STEP           N        MEAN         STD         MIN         MAX  "
       "    SKEW      KURT  HISTOGRAM\n"
       "       8          12        0.25         0.5       -0.75           1  "
       "     nan    -1.500  ▁ ▃█  (under 0, over 2, nan 1)\n"
       "      16           4         0.1      0.3333      -1e-05   1.235e+05  "
       "   0.500     2.000  █▄▄ \n"},
  };
  // CSV and table rows carry no model column, comparing or not.
  for (const auto& [format, name, expected] : cases) {
    for (bool comparing : {false, true}) {
      EXPECT_EQ(RenderFrames(format, comparing), expected)
          << name << (comparing ? ", comparing" : "");
    }
  }
}

TEST(HistogramTest, TableSumsWideHistogramsIntoSixtyFourColumns) {
  pb::HistogramFrame frame;
  frame.set_step(1);
  for (int i = 0; i < 128; ++i) frame.add_counts(i < 64 ? 1 : 0);
  std::ostringstream out;
  HistogramRenderer(Format::kTable, false, out).Frame(frame, "m");
  std::string blocks;
  for (int i = 0; i < 32; ++i) blocks += "█";
  blocks += std::string(32, ' ');
  EXPECT_NE(out.str().find("  " + blocks + "\n"), std::string::npos)
      << out.str();
}

// ---------------------------------------------------------------- msd

pb::MSDPoint Point(const std::string& text) {
  return Parse<pb::MSDPoint>(text);
}

// Two points and a peak for each model named (`peak`, as the server sends it).
std::string RenderMsd(Format format, bool lag, const std::vector<std::string>& models,
                      const char* peak = "step: 1 msd: 0.5 interior: true") {
  auto feed = [&](MsdRenderer& renderer) {
    for (const std::string& model : models) {
      renderer.BeginModel(model);
      renderer.Point(Point("step: 1 msd: 0.5 from_step: 0 n: 16 pairs: 3"));
      pb::MSDPoint second = Point(
          "step: 2 msd: 0.1 from_step: 1 rate: 0.1 n: 16 "
          "msd_before_previous: 0.75 before_previous_step: 0 pairs: 2");
      renderer.Point(second);
      renderer.Peak(Parse<pb::MSDPeak>(peak));
      renderer.EndModel();
    }
    renderer.Finish();
  };
  return Fed<MsdRenderer>(feed, format, lag, models.size() > 1);
}

constexpr char kFirstPoint[] =
    "{\"from_step\":0,\"msd\":0.5,\"n\":16,\"rate\":0.0,\"step\":1}";
constexpr char kSecondPoint[] =
    "{\"before_previous_step\":0,\"from_step\":1,\"msd\":0.1,"
    "\"msd_before_previous\":0.75,\"n\":16,\"rate\":0.1,\"step\":2}";

TEST(MsdTest, Jsonl) {
  EXPECT_EQ(RenderMsd(Format::kJsonl, false, {"pythia-70m"}),
            std::string(kFirstPoint) + "\n" + kSecondPoint + "\n");
}

TEST(MsdTest, JsonlLagAddsLagAndPairs) {
  EXPECT_EQ(RenderMsd(Format::kJsonl, true, {"pythia-70m"}),
            "{\"from_step\":0,\"lag\":1,\"msd\":0.5,\"n\":16,\"pairs\":3,"
            "\"rate\":0.0,\"step\":1}\n"
            "{\"before_previous_step\":0,\"from_step\":1,\"lag\":2,"
            "\"msd\":0.1,\"msd_before_previous\":0.75,\"n\":16,\"pairs\":2,"
            "\"rate\":0.1,\"step\":2}\n");
}

TEST(MsdTest, Json) {
  EXPECT_EQ(RenderMsd(Format::kJson, false, {"pythia-70m"}),
            std::string("{\"largest\":{\"msd\":0.5,\"step\":1},\"monotonic\":null,"
                        "\"peak\":{\"msd\":0.5,\"step\":1},\"points\":[") +
                kFirstPoint + "," + kSecondPoint + "]}\n");
}

TEST(MsdTest, AMaximumAtAnEndIsNoPeak) {
  const char* at_the_start = "step: 1 msd: 0.5 trend: TREND_DECREASING";
  EXPECT_EQ(RenderMsd(Format::kJson, false, {"pythia-70m"}, at_the_start),
            std::string("{\"largest\":{\"msd\":0.5,\"step\":1},\"monotonic\":"
                        "\"decreasing\",\"peak\":null,\"points\":[") +
                kFirstPoint + "," + kSecondPoint + "]}\n");
  const std::string table = RenderMsd(Format::kTable, false, {"pythia-70m"}, at_the_start);
  EXPECT_TRUE(table.ends_with(
      "no peak, decreasing: the largest msd 0.5 is at the first step 1\n"))
      << table;
}

TEST(MsdTest, JsonWithoutPeakIsNull) {
  auto feed = [](MsdRenderer& renderer) {
    renderer.BeginModel("m");
    pb::MSDPoint point = Point("step: 0 n: 4");
    point.set_msd(kNaN);
    renderer.Point(point);
    renderer.EndModel();
    renderer.Finish();
  };
  EXPECT_EQ(Fed<MsdRenderer>(feed, Format::kJson, false, false),
            "{\"largest\":null,\"monotonic\":null,\"peak\":null,\"points\":["
            "{\"from_step\":0,\"msd\":null,\"n\":4,\"rate\":0.0,\"step\":0}]}\n");
}

TEST(MsdTest, JsonComparingNestsEachModel) {
  EXPECT_EQ(RenderMsd(Format::kJson, false, {"a", "b"}),
            "{\"models\":["
            "{\"largest\":{\"msd\":0.5,\"step\":1},\"model\":\"a\",\"monotonic\":null,"
            "\"peak\":{\"msd\":0.5,\"step\":1},\"points\":["
            "{\"from_step\":0,\"model\":\"a\",\"msd\":0.5,\"n\":16,"
            "\"rate\":0.0,\"step\":1},"
            "{\"before_previous_step\":0,\"from_step\":1,\"model\":\"a\","
            "\"msd\":0.1,\"msd_before_previous\":0.75,\"n\":16,\"rate\":0.1,"
            "\"step\":2}]},"
            "{\"largest\":{\"msd\":0.5,\"step\":1},\"model\":\"b\",\"monotonic\":null,"
            "\"peak\":{\"msd\":0.5,\"step\":1},\"points\":["
            "{\"from_step\":0,\"model\":\"b\",\"msd\":0.5,\"n\":16,"
            "\"rate\":0.0,\"step\":1},"
            "{\"before_previous_step\":0,\"from_step\":1,\"model\":\"b\","
            "\"msd\":0.1,\"msd_before_previous\":0.75,\"n\":16,\"rate\":0.1,"
            "\"step\":2}]}]}\n");
}

TEST(MsdTest, Csv) {
  EXPECT_EQ(RenderMsd(Format::kCsv, false, {"pythia-70m"}),
            "step,msd,from_step,rate,n\n"
            "1,0.5,0,0,16\n"
            "2,0.1,1,0.1,16\n");
}

TEST(MsdTest, CsvComparingAddsTheModelColumn) {
  EXPECT_EQ(RenderMsd(Format::kCsv, false, {"a", "b"}),
            "model,step,msd,from_step,rate,n\n"
            "a,1,0.5,0,0,16\n"
            "a,2,0.1,1,0.1,16\n"
            "b,1,0.5,0,0,16\n"
            "b,2,0.1,1,0.1,16\n");
}

TEST(MsdTest, CsvNumbersRoundTrip) {
  auto feed = [](MsdRenderer& renderer) {
    renderer.BeginModel("m");
    pb::MSDPoint point = Point("step: 2 from_step: 0 n: 16384");
    point.set_msd(0.0085832455570868087);
    point.set_rate(kNaN);
    renderer.Point(point);
  };
  EXPECT_EQ(Fed<MsdRenderer>(feed, Format::kCsv, false, false),
            "step,msd,from_step,rate,n\n2,0.008583245557086809,0,nan,16384\n");
}

TEST(MsdTest, Table) {
  EXPECT_EQ(RenderMsd(Format::kTable, false, {"pythia-70m"}),
            "MODEL                            STEP     FROM            MSD   "
            "        RATE\n"
            "pythia-70m                          1        0            0.5   "
            "           0\n"
            "pythia-70m                          2        1            0.1   "
            "         0.1\n"
            "peak: step 1, msd 0.5\n");
}

TEST(MsdTest, TableComparingNamesEachPeak) {
  const std::string out = RenderMsd(Format::kTable, true, {"a", "b"});
  EXPECT_EQ(out,
            "MODEL                            STEP     FROM            MSD   "
            "        RATE\n"
            "a                                   1        0            0.5   "
            "           0\n"
            "a                                   2        1            0.1   "
            "         0.1\n"
            "a peak: lag 1, msd 0.5\n"
            "b                                   1        0            0.5   "
            "           0\n"
            "b                                   2        1            0.1   "
            "         0.1\n"
            "b peak: lag 1, msd 0.5\n");
}

// -------------------------------------------------------- bifurcation

std::string RenderBifurcation(Format format, bool with_onset) {
  pb::BifurcationStep unimodal = Parse<pb::BifurcationStep>(R"pb(
    step: 8 mode_locations: 0.5 mode_heights: 2 bandwidth: 0.03125)pb");
  unimodal.set_bc(kNaN);
  pb::BifurcationSummary summary;
  if (with_onset) summary.set_onset(4);
  auto feed = [&](BifurcationRenderer& renderer) {
    renderer.Step(Parse<pb::BifurcationStep>(R"pb(
      step: 4 bc: 0.625 mode_locations: [ -0.5, 0.25 ]
      mode_heights: [ 1.5, 0.75 ] dip: 0.125 bimodal: true
      bandwidth: 0.0625)pb"));
    renderer.Step(unimodal);
    renderer.Summary(summary);
    renderer.Finish();
  };
  return Fed<BifurcationRenderer>(feed, format);
}

constexpr char kBimodalStep[] =
    "{\"bandwidth\":0.0625,\"bc\":0.625,\"bimodal\":true,\"dip\":0.125,"
    "\"mode_heights\":[1.5,0.75],\"modes\":[-0.5,0.25],\"step\":4}";
constexpr char kUnimodalStep[] =
    "{\"bandwidth\":0.03125,\"bc\":null,\"bimodal\":false,\"dip\":0.0,"
    "\"mode_heights\":[2.0],\"modes\":[0.5],\"step\":8}";

TEST(BifurcationTest, Jsonl) {
  EXPECT_EQ(RenderBifurcation(Format::kJsonl, true),
            std::string(kBimodalStep) + "\n" + kUnimodalStep + "\n");
}

TEST(BifurcationTest, Json) {
  EXPECT_EQ(RenderBifurcation(Format::kJson, true),
            std::string("{\"onset\":4,\"steps\":[") + kBimodalStep + "," +
                kUnimodalStep + "]}\n");
  EXPECT_EQ(RenderBifurcation(Format::kJson, false),
            std::string("{\"onset\":null,\"steps\":[") + kBimodalStep + "," +
                kUnimodalStep + "]}\n");
}

TEST(BifurcationTest, Table) {
  const std::string rows =
      "    STEP      BC     DIP  BIMODAL  MODES\n"
      "       4   0.625   0.125      yes  -0.5 0.25\n"
      "       8     nan   0.000       no  0.5\n";
  EXPECT_EQ(RenderBifurcation(Format::kTable, true), rows + "onset: step 4\n");
  EXPECT_EQ(RenderBifurcation(Format::kTable, false), rows + "onset: none\n");
}

// -------------------------------------------------------------- audit

pb::AuditResponse Audit() {
  pb::AuditResponse response = Parse<pb::AuditResponse>(R"pb(
    findings {
      kind: "identical" steps: [ 8, 16 ] tensor: "embed_out.weight"
      detail: "same bytes as step 8"
    }
    findings { kind: "missing" steps: 3 detail: "not in schedule" }
    steps_checked: 7 tensors_checked: 1)pb");
  response.mutable_findings(1)->set_score(kNaN);
  return response;
}

TEST(AuditTest, Json) {
  EXPECT_EQ(Printed(RenderAudit, Audit(), Format::kJson),
            "{\"findings\":[{\"detail\":\"same bytes as step 8\","
            "\"kind\":\"identical\",\"score\":0.0,\"steps\":[8,16],"
            "\"tensor\":\"embed_out.weight\"},{\"detail\":\"not in schedule\","
            "\"kind\":\"missing\",\"score\":null,\"steps\":[3],\"tensor\":\"\"}"
            "],\"steps_checked\":7,\"tensors_checked\":1}\n");
}

TEST(AuditTest, Table) {
  EXPECT_EQ(Printed(RenderAudit, Audit(), Format::kTable),
            "7 steps, 1 tensors checked: 2 findings\n"
            "identical      8, 16                    embed_out.weight  same "
            "bytes as step 8\n"
            "missing        3                          not in schedule\n");
}

// --------------------------------------------------------- perplexity

std::string RenderPerplexity(Format format,
                             const std::vector<std::string>& models) {
  const auto step0 = Parse<pb::PerplexityPoint>(
      "step: 0 perplexity: 1234.5 accuracy: 0.25 n: 4 "
      "mean_logprob: -7.125 target_tokens: 9 truncated: 1");
  const auto step32 = Parse<pb::PerplexityPoint>(
      "step: 32 perplexity: 12.3456789 accuracy: 0.75 n: 4 "
      "mean_logprob: -2.5 target_tokens: 9");
  auto feed = [&](PerplexityRenderer& renderer) {
    for (const std::string& model : models) {
      renderer.Point(step0, model);
      renderer.Point(step32, model);
    }
    renderer.Finish();
  };
  return Fed<PerplexityRenderer>(feed, format, models.size() > 1);
}

constexpr char kStep0[] =
    "{\"accuracy\":0.25,\"mean_logprob\":-7.125,\"n\":4,\"perplexity\":1234.5,"
    "\"step\":0,\"target_tokens\":9,\"truncated\":1}";
constexpr char kStep32[] =
    "{\"accuracy\":0.75,\"mean_logprob\":-2.5,\"n\":4,"
    "\"perplexity\":12.3456789,\"step\":32,\"target_tokens\":9,"
    "\"truncated\":0}";

TEST(PerplexityTest, Jsonl) {
  EXPECT_EQ(RenderPerplexity(Format::kJsonl, {"fortune-micro"}),
            std::string(kStep0) + "\n" + kStep32 + "\n");
}

TEST(PerplexityTest, Json) {
  EXPECT_EQ(RenderPerplexity(Format::kJson, {"fortune-micro"}),
            std::string("{\"steps\":[") + kStep0 + "," + kStep32 + "]}\n");
}

TEST(PerplexityTest, JsonComparingKeysEachRowByModel) {
  EXPECT_EQ(RenderPerplexity(Format::kJson, {"a", "b"}),
            "{\"steps\":["
            "{\"accuracy\":0.25,\"mean_logprob\":-7.125,\"model\":\"a\","
            "\"n\":4,\"perplexity\":1234.5,\"step\":0,\"target_tokens\":9,"
            "\"truncated\":1},"
            "{\"accuracy\":0.75,\"mean_logprob\":-2.5,\"model\":\"a\",\"n\":4,"
            "\"perplexity\":12.3456789,\"step\":32,\"target_tokens\":9,"
            "\"truncated\":0},"
            "{\"accuracy\":0.25,\"mean_logprob\":-7.125,\"model\":\"b\","
            "\"n\":4,\"perplexity\":1234.5,\"step\":0,\"target_tokens\":9,"
            "\"truncated\":1},"
            "{\"accuracy\":0.75,\"mean_logprob\":-2.5,\"model\":\"b\",\"n\":4,"
            "\"perplexity\":12.3456789,\"step\":32,\"target_tokens\":9,"
            "\"truncated\":0}]}\n");
}

TEST(PerplexityTest, Csv) {
  EXPECT_EQ(RenderPerplexity(Format::kCsv, {"fortune-micro"}),
            "step,perplexity,accuracy,n,mean_logprob,target_tokens,truncated\n"
            "0,1234.5,0.25,4,-7.125,9,1\n"
            "32,12.3456789,0.75,4,-2.5,9,0\n");
}

TEST(PerplexityTest, CsvComparingAddsTheModelColumn) {
  EXPECT_EQ(
      RenderPerplexity(Format::kCsv, {"a", "b"}),
      "model,step,perplexity,accuracy,n,mean_logprob,target_tokens,truncated\n"
      "a,0,1234.5,0.25,4,-7.125,9,1\n"
      "a,32,12.3456789,0.75,4,-2.5,9,0\n"
      "b,0,1234.5,0.25,4,-7.125,9,1\n"
      "b,32,12.3456789,0.75,4,-2.5,9,0\n");
}

TEST(PerplexityTest, Table) {
  EXPECT_EQ(RenderPerplexity(Format::kTable, {"fortune-micro"}),
            "MODEL                            STEP     PERPLEXITY  ACCURACY   "
            "   N\n"
            "fortune-micro                       0         1234.5    0.2500   "
            "   4\n"
            "fortune-micro                      32        12.3457    0.7500   "
            "   4\n");
}

// ----------------------------------------------------- language model

TEST(TokensTest, JsonAndTable) {
  const auto response = Parse<pb::TokenizeResponse>(
      R"pb(ids: [ 510, 5798, 9 ] pieces: [ "The", "Ġcat", "\342\226" ])pb");
  // The piece that splits a character is replaced in JSON, kept in tables.
  EXPECT_EQ(Printed(RenderTokens, response, Format::kJson),
            "{\"ids\":[510,5798,9],\"pieces\":[\"The\",\"Ġcat\",\"\xEF\xBF\xBD\"]}\n");
  EXPECT_EQ(Printed(RenderTokens, response, Format::kTable),
            "     510  The\n"
            "    5798  Ġcat\n"
            "       9  \xE2\x96\n");
}

std::string RenderGeneration(Format format, bool completed) {
  auto feed = [&](GenerateRenderer& renderer) {
    renderer.Token(Parse<pb::GenerateResponse>(
        R"pb(prompt_ids: [ 1, 2 ]
             token { id: 5 text: " on" logprob: -0.5 })pb"));
    renderer.Token(Parse<pb::GenerateResponse>(
        R"pb(token { id: 6 text: " the" logprob: -0.25 index: 1 })pb"));
    renderer.Finish(completed);
  };
  return Fed<GenerateRenderer>(feed, format);
}

TEST(GenerateTest, TextStreamsThenEndsTheLine) {
  EXPECT_EQ(RenderGeneration(Format::kText, true), " on the\n");
  EXPECT_EQ(RenderGeneration(Format::kTable, true), " on the\n");
  // Cut short: the line still ends, before the error is printed.
  EXPECT_EQ(RenderGeneration(Format::kText, false), " on the\n");
}

TEST(GenerateTest, TextWithoutTokensPrintsNothing) {
  auto feed = [](GenerateRenderer& renderer) { renderer.Finish(true); };
  EXPECT_EQ(Fed<GenerateRenderer>(feed, Format::kText), "");
}

TEST(GenerateTest, JsonOnceComplete) {
  EXPECT_EQ(RenderGeneration(Format::kJson, true),
            "{\"ids\":[5,6],\"logprobs\":[-0.5,-0.25],\"prompt_ids\":[1,2],"
            "\"text\":\" on the\"}\n");
  EXPECT_EQ(RenderGeneration(Format::kJson, false), "");
}

std::string RenderUnmask(Format format) {
  auto feed = [](UnmaskRenderer& renderer) {
    renderer.Frame(Parse<pb::UnmaskFrame>(R"pb(
      step: 0 k: 1 n: 3 prefix_ids: 10 prefix_text: "The"
      generated_ids: [ 11, 12 ] generated_text: " cat\tsat\n"
      generated_pieces: [ " cat", "\tsat\n" ]
      agree: [ true, false ] recovered: 0.5 original_ids: [ 10, 11, 13 ])pb"));
    renderer.Frame(Parse<pb::UnmaskFrame>(R"pb(
      step: 32 k: 2 n: 3 prefix_ids: [ 10, 11 ] prefix_text: "The cat"
      generated_ids: 13 generated_text: " sat" generated_pieces: " sat"
      agree: true recovered: 1)pb"));
    renderer.Finish();
  };
  return Fed<UnmaskRenderer>(feed, format);
}

constexpr char kFrame0[] =
    "{\"agree\":[true,false],\"generated\":\" cat\\tsat\\n\","
    "\"generated_ids\":[11,12],\"generated_pieces\":[\" cat\",\"\\tsat\\n\"],"
    "\"k\":1,\"n\":3,\"prefix\":\"The\","
    "\"prefix_ids\":[10],\"recovered\":0.5,\"step\":0}";
constexpr char kFrame32[] =
    "{\"agree\":[true],\"generated\":\" sat\",\"generated_ids\":[13],"
    "\"generated_pieces\":[\" sat\"],\"k\":2,"
    "\"n\":3,\"prefix\":\"The cat\",\"prefix_ids\":[10,11],\"recovered\":1.0,"
    "\"step\":32}";

TEST(UnmaskTest, Jsonl) {
  EXPECT_EQ(RenderUnmask(Format::kJsonl),
            std::string(kFrame0) + "\n" + kFrame32 + "\n");
}

TEST(UnmaskTest, Json) {
  EXPECT_EQ(RenderUnmask(Format::kJson),
            std::string("{\"frames\":[") + kFrame0 + "," + kFrame32 +
                "],\"n\":3,\"original_ids\":[10,11,13]}\n");
}

TEST(UnmaskTest, JsonWithoutFramesStillHasTheList) {
  auto feed = [](UnmaskRenderer& renderer) { renderer.Finish(); };
  EXPECT_EQ(Fed<UnmaskRenderer>(feed, Format::kJson), "{\"frames\":[]}\n");
}

TEST(UnmaskTest, TableKeepsEachFrameOnOneLine) {
  EXPECT_EQ(RenderUnmask(Format::kTable),
            "    STEP    K    N RECOVERED  PREFIX | COMPLETION\n"
            "       0    1    3     0.500  The |  cat sat \n"
            "      32    2    3     1.000  The cat |  sat\n");
}

pb::LogitsResponse Logits() {
  pb::LogitsResponse response = Parse<pb::LogitsResponse>(R"pb(
    tokens: 5
    top { id: 42 piece: "Ġthe" logit: 3.5 }
    mean_logits: [ 0.5, -0.25 ])pb");
  pb::TokenScore* comma = response.add_top();
  comma->set_id(7);
  comma->set_piece(",");
  comma->set_logit(0.1f);  // a float: JSON shows its exact double value
  return response;
}

TEST(LogitsTest, Json) {
  const std::string top =
      "\"tokens\":5,\"top\":[{\"id\":42,\"logit\":3.5,\"piece\":\"Ġthe\"},"
      "{\"id\":7,\"logit\":0.10000000149011612,\"piece\":\",\"}]}\n";
  EXPECT_EQ(Printed(RenderLogits, Logits(), false, Format::kJson), "{" + top);
  EXPECT_EQ(Printed(RenderLogits, Logits(), true, Format::kJson),
            "{\"mean_logits\":[0.5,-0.25]," + top);
}

TEST(LogitsTest, Table) {
  EXPECT_EQ(Printed(RenderLogits, Logits(), true, Format::kTable),
            "mean over 5 positions\n"
            "      ID        LOGIT  PIECE\n"
            "      42      3.50000  Ġthe\n"
            "       7      0.10000  ,\n");
}

pb::AttentionResponse Attention() {
  return Parse<pb::AttentionResponse>(R"pb(
    heads: 2 tokens: 2 pieces: [ "A", "abcdefghijklmnopq" ]
    weights: [ 1, 0, 0.25, 0.75, 1, 0, 0.5, 0.5 ])pb");
}

TEST(AttentionTest, Json) {
  EXPECT_EQ(Printed(RenderAttention, Attention(), false, Format::kJson),
            "{\"heads\":2,\"pieces\":[\"A\",\"abcdefghijklmnopq\"],"
            "\"tokens\":2,\"weights\":[[[1.0,0.0],[0.25,0.75]],"
            "[[1.0,0.0],[0.5,0.5]]]}\n");
}

TEST(AttentionTest, TableOneBlockPerHead) {
  EXPECT_EQ(Printed(RenderAttention, Attention(), false, Format::kTable),
            "head 0\n"
            "             A 1.000 0.000\n"
            "abcdefghijklmn 0.250 0.750\n"
            "head 1\n"
            "             A 1.000 0.000\n"
            "abcdefghijklmn 0.500 0.500\n");
}

TEST(AttentionTest, TableAveraged) {
  const auto response = Parse<pb::AttentionResponse>(R"pb(
    heads: 1 tokens: 2 pieces: [ "A", "Ġdog" ]
    weights: [ 1, 0, 0.625, 0.375 ])pb");
  // Pieces are padded by bytes: "Ġdog" is five.
  EXPECT_EQ(Printed(RenderAttention, response, true, Format::kTable),
            "mean of the heads\n"
            "             A 1.000 0.000\n"
            "         Ġdog 0.625 0.375\n");
}

}  // namespace
}  // namespace garden::client
