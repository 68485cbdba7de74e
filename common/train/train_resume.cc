#include "common/train/train_resume.h"

#include <filesystem>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/train/train_folder.h"
#include "spdlog/spdlog.h"

namespace garden::train_internal {
namespace {

namespace fs = std::filesystem;

// The suite: one tokenizer and corpus for all its models.
absl::Status CheckSuite(const TrainRunOptions& o, const Plan& plan) {
  const Paths& p = plan.paths;
  std::error_code ec;
  if (!fs::exists(p.suite_file, ec)) return absl::OkStatus();
  absl::StatusOr<Json> have = ReadJsonFile(p.suite_file);
  if (have.ok() && *have == plan.suite_record) return absl::OkStatus();
  const std::string diff = have.ok() ? SettingsDiff(plan.suite_record, *have)
                                     : std::string(have.status().message());
  if (!o.overwrite) {
    return absl::FailedPreconditionError(absl::StrCat(
        p.out, " holds suite \"", o.suite,
        "\" trained on another corpus or vocabulary (", diff,
        "); choose another --suite or --out, or pass --overwrite"));
  }
  spdlog::warn(
      "suite {} in {} had another corpus or vocabulary ({}); --overwrite: "
      "its other models keep their old tokenizer",
      o.suite, p.out, diff);
  return absl::OkStatus();
}

// The model's folder, if any, must be garden-train's, with these settings.
absl::Status CheckModelFolder(const Plan& plan) {
  const Paths& p = plan.paths;
  std::error_code ec;
  if (!fs::exists(p.train_json, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        p.model_dir,
        " exists but has no train.json: not written by garden-train; "
        "choose another --out or pass --overwrite to replace it"));
  }
  absl::StatusOr<Json> have = ReadJsonFile(p.train_json);
  if (!have.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(have.status().message(), "; pass --overwrite to retrain"));
  }
  const Json settings = have->value("settings", Json::object());
  if (have->value("fingerprint", "") != plan.fingerprint ||
      settings != plan.settings) {
    return absl::FailedPreconditionError(absl::StrCat(
        p.model_dir, " holds ", plan.model_name,
        " trained with other settings (", SettingsDiff(plan.settings, settings),
        "); pass --overwrite to replace it, or choose another --out"));
  }
  return absl::OkStatus();
}

// The resume state: it must be whole and ours.
absl::StatusOr<ResumePoint> ReadResumeState(const Plan& plan,
                                            bool model_exists) {
  const Paths& p = plan.paths;
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("the resume state ", p.state_file, " is corrupt (", why,
                     "); refusing to train on from it. Delete ", p.state_dir,
                     " to retrain from step 0, or pass --overwrite"));
  };
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(p.state_file);
  if (!file.ok()) return corrupt(file.status().message());
  const auto& meta = (*file)->metadata();
  auto fp = meta.find(kFingerprintKey);
  if (fp == meta.end()) return corrupt("no settings fingerprint");
  if (fp->second != plan.fingerprint) {
    if (!model_exists) {
      return absl::FailedPreconditionError(absl::StrCat(
          p.state_file, " belongs to a run with other settings (fingerprint ",
          fp->second, ", this run ", plan.fingerprint,
          "); pass --overwrite to start afresh"));
    }
    return corrupt("its fingerprint differs from train.json's");
  }
  auto hist = meta.find(kHistoryKey);
  Json history =
      hist == meta.end() ? Json() : Json::parse(hist->second, nullptr, false);
  if (!history.is_array()) return corrupt("no checkpoint history");
  ResumePoint resume;
  for (const Json& j : history) {
    std::optional<CheckpointRecord> r = CheckpointRecord::FromJson(j);
    if (!r) return corrupt("a malformed checkpoint history");
    resume.history.push_back(*r);
  }
  resume.state = *std::move(file);
  return resume;
}

}  // namespace

Json CheckpointRecord::ToJson() const {
  return {{"step", step},
          {"train_loss", JsonNumber(train_loss)},
          {"heldout_loss", JsonNumber(heldout_loss)},
          {"learning_rate", learning_rate},
          {"tokens_seen", tokens_seen}};
}

std::optional<CheckpointRecord> CheckpointRecord::FromJson(const Json& j) {
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) {
    return std::nullopt;
  }
  CheckpointRecord r;
  r.step = j["step"].get<int64_t>();
  auto num = [&](const char* key, double* out) {
    auto it = j.find(key);
    if (it != j.end() && it->is_number()) *out = it->get<double>();
  };
  num("train_loss", &r.train_loss);
  num("heldout_loss", &r.heldout_loss);
  num("learning_rate", &r.learning_rate);
  if (auto it = j.find("tokens_seen");
      it != j.end() && it->is_number_integer()) {
    r.tokens_seen = it->get<int64_t>();
  }
  return r;
}

Json HistoryJson(const std::vector<CheckpointRecord>& history) {
  Json out = Json::array();
  for (const CheckpointRecord& r : history) out.push_back(r.ToJson());
  return out;
}

bool AlreadyTrained(const Plan& plan, const TrainRunOptions& o) {
  if (o.overwrite) return false;
  std::error_code ec;
  if (!fs::exists(plan.paths.train_json, ec) ||
      !fs::exists(plan.paths.state_file, ec) ||
      !fs::exists(plan.paths.lambada, ec) ||
      !fs::exists(plan.paths.suite_file, ec)) {
    return false;
  }
  absl::StatusOr<Json> have = ReadJsonFile(plan.paths.train_json);
  if (!have.ok() || !have->value("complete", false) ||
      have->value("fingerprint", "") != plan.fingerprint ||
      have->value("settings", Json::object()) != plan.settings) {
    return false;
  }
  for (int64_t step : plan.schedule) {
    if (!fs::exists(absl::StrCat(plan.paths.model_dir, "/step", step,
                                 "/model.safetensors"),
                    ec)) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<ResumePoint> Inspect(const TrainRunOptions& o,
                                    const Plan& plan) {
  const Paths& p = plan.paths;
  RETURN_IF_ERROR(CheckSuite(o, plan));
  std::error_code ec;
  const bool model_exists = fs::exists(p.model_dir, ec);
  const bool state_exists = fs::exists(p.state_file, ec);
  if (o.overwrite) return ResumePoint();  // Prepare clears both
  if (model_exists) RETURN_IF_ERROR(CheckModelFolder(plan));
  if (!state_exists) {
    if (model_exists) {
      spdlog::warn(
          "{}: no resume state in {}; training again from step 0 "
          "(the same settings rewrite the same checkpoints)",
          plan.model_name, p.state_dir);
    }
    return ResumePoint();
  }
  return ReadResumeState(plan, model_exists);
}

absl::Status Restore(const Plan& plan, const SafetensorsFile& state,
                     const std::vector<CheckpointRecord>& history,
                     GptNeoxTrainer& trainer) {
  const Paths& p = plan.paths;
  if (absl::Status s = trainer.RestoreState(state); !s.ok()) {
    return absl::DataLossError(absl::StrCat(
        s.message(), ". Refusing to train on from it: delete ", p.state_dir,
        " to retrain from step 0, or pass --overwrite"));
  }
  const int64_t step = trainer.step();
  if (step > plan.model.steps ||
      (history.empty() || history.back().step != step)) {
    return absl::DataLossError(absl::StrCat(
        "the resume state ", p.state_file, " is at step ", step,
        ", which does not match its history or --steps ", plan.model.steps,
        "; delete ", p.state_dir, " or pass --overwrite"));
  }
  return absl::OkStatus();
}

}  // namespace garden::train_internal
