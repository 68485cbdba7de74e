// garden-train's run loop (common/train/train_run.h). The plan
// (train_plan.h), the folder's files (train_folder.h), the resume state
// (train_resume.h) and the evaluation (train_eval.h) live beside it.
#include "common/train/train_run.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/formats/safetensors_writer.h"
#include "common/train/train_eval.h"
#include "common/train/train_folder.h"
#include "common/train/train_plan.h"
#include "common/train/train_resume.h"
#include "common/train/trainer.h"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

namespace fs = std::filesystem;
using train_internal::CheckpointRecord;
using train_internal::Json;
using train_internal::Paths;
using train_internal::Plan;
using train_internal::ResumePoint;

// One model's training, from the checked plan to its last checkpoint.
class Run {
 public:
  Run(const TrainRunOptions& options, Plan plan)
      : o_(options), plan_(std::move(plan)), p_(plan_.paths) {}
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  absl::StatusOr<TrainRunResult> Go();

 private:
  // The trainer, fresh or restored; then, holding the lock, the folder
  // made ready: cleared (--overwrite) or swept of a killed run's leftovers,
  // the suite's files and train.json written.
  absl::Status Prepare(ResumePoint resume);
  absl::Status WriteSharedFiles();
  // The updates from `start` + 1 on, checkpointing on the schedule.
  absl::StatusOr<TrainRunResult> Train(int64_t start);

  // The order at each checkpoint: step folder, state, train.json.
  absl::Status Checkpoint(int64_t step, double train_loss);
  absl::Status WriteStepFolder(int64_t step);
  absl::Status WriteState();
  absl::Status WriteTrainJson(bool complete);

  void LogStart() const;
  void LogProgress(int64_t step, double loss, double lr) const;
  TrainRunResult Finish(bool complete);

  const TrainRunOptions& o_;
  Plan plan_;
  const Paths& p_;
  std::unique_ptr<GptNeoxTrainer> trainer_;
  std::vector<CheckpointRecord> history_;
  TrainRunResult result_;
  bool already_complete_ = false;
  std::chrono::steady_clock::time_point started_;
  int64_t first_update_ = 0;
  train_internal::ModelLock lock_;
};

absl::Status Run::Prepare(ResumePoint resume) {
  ASSIGN_OR_RETURN(trainer_, GptNeoxTrainer::Create(
                                 plan_.config, train_internal::OptimizerOf(plan_.model), o_.seed));
  history_ = std::move(resume.history);
  if (resume.state != nullptr) {
    RETURN_IF_ERROR(
        train_internal::Restore(plan_, *resume.state, history_, *trainer_));
    resume.state.reset();
    already_complete_ = trainer_->step() == plan_.model.steps;
  }
  // From here on the disk changes.
  RETURN_IF_ERROR(lock_.Acquire(p_, plan_.model_name));
  if (o_.overwrite) {
    RETURN_IF_ERROR(train_internal::Discard(p_.model_dir, p_.trash));
    RETURN_IF_ERROR(train_internal::Discard(p_.state_dir, p_.trash));
  }
  RETURN_IF_ERROR(train_internal::MakeDirs(p_.state_dir));
  RETURN_IF_ERROR(train_internal::RemoveLeftovers(p_));
  return WriteSharedFiles();
}

absl::Status Run::WriteSharedFiles() {
  RETURN_IF_ERROR(
      train_internal::WriteJsonFile(p_.suite_file, plan_.suite_record));
  if (!already_complete_) {
    RETURN_IF_ERROR(
        WriteClozeJsonl(ClozeExamples(plan_.corpus.heldout), p_.lambada));
  }
  RETURN_IF_ERROR(train_internal::MakeDirs(p_.model_dir));
  // train.json first: a folder with checkpoints always says whose they are.
  return WriteTrainJson(already_complete_);
}

absl::Status Run::WriteTrainJson(bool complete) {
  const Json doc = {
      {"model", plan_.model_name},
      {"suite", o_.suite},
      {"size", plan_.size},
      {"variant", plan_.settings["variant"]},
      {"fingerprint", plan_.fingerprint},
      {"settings", plan_.settings},
      {"threads", o_.threads},
      {"corpus_dir", o_.corpus.dir},
      {"tokenizer_vocab_size", plan_.tokenizer_vocab},
      {"vocab_size", plan_.config.vocab_size},
      {"num_parameters", trainer_->num_parameters()},
      {"train_tokens", plan_.train_stream.size()},
      {"heldout_eval_tokens", plan_.heldout.samples * plan_.model.seq_len},
      {"unigram_heldout_loss", train_internal::JsonNumber(plan_.unigram_loss)},
      {"complete", complete},
      {"checkpoints", train_internal::HistoryJson(history_)},
  };
  return train_internal::WriteJsonFile(p_.train_json, doc);
}

// Assembled aside and renamed into place.
absl::Status Run::WriteStepFolder(int64_t step) {
  const std::string name = absl::StrCat("step", step);
  const std::string staged = absl::StrCat(p_.state_dir, "/tmp.", name);
  RETURN_IF_ERROR(train_internal::RemoveTree(staged));
  RETURN_IF_ERROR(train_internal::MakeDirs(staged));
  ASSIGN_OR_RETURN(
      const SafetensorsWriter weights,
      trainer_->ExportWeights(o_.store_f32 ? DType::kF32 : DType::kF16));
  RETURN_IF_ERROR(WriteFileAtomic(staged + "/config.json", plan_.config_json));
  RETURN_IF_ERROR(weights.WriteAtomic(staged + "/model.safetensors"));
  RETURN_IF_ERROR(
      WriteFileAtomic(staged + "/tokenizer.json", plan_.tokenizer_json));
  return train_internal::Publish(staged, absl::StrCat(p_.model_dir, "/", name));
}

absl::Status Run::WriteState() {
  ASSIGN_OR_RETURN(SafetensorsWriter state, trainer_->SaveState());
  state.SetMetadata(train_internal::kFingerprintKey, plan_.fingerprint);
  state.SetMetadata(train_internal::kHistoryKey,
                    train_internal::HistoryJson(history_).dump());
  return state.WriteAtomic(p_.state_file);
}

absl::Status Run::Checkpoint(int64_t step, double train_loss) {
  ASSIGN_OR_RETURN(const double heldout,
                   train_internal::HeldoutLoss(*trainer_, plan_.heldout,
                                               plan_.model.seq_len));
  CheckpointRecord record;
  record.step = step;
  record.train_loss = train_loss;
  record.heldout_loss = heldout;
  record.learning_rate =
      step == 0 ? 0.0 : train_internal::ScheduleOf(plan_.model).At(step);
  record.tokens_seen = step * plan_.model.batch_size * plan_.model.seq_len;
  while (!history_.empty() && history_.back().step >= step) history_.pop_back();
  history_.push_back(record);

  RETURN_IF_ERROR(WriteStepFolder(step));
  RETURN_IF_ERROR(WriteState());
  RETURN_IF_ERROR(WriteTrainJson(step == plan_.model.steps));
  result_.checkpoints_written.push_back(step);
  spdlog::info(
      "{} step {}: checkpoint written (train loss {:.4f}, held-out {:.4f})",
      plan_.model_name, step, train_loss, heldout);
  return absl::OkStatus();
}

void Run::LogStart() const {
  const TrainPreset& m = plan_.model;
  spdlog::info(
      "{}: {} parameters (d={}, L={}, heads={}), vocab {} (padded {}), {} "
      "training tokens, {} updates of {}x{} tokens, peak lr {}{}",
      plan_.model_name, trainer_->num_parameters(), m.hidden_size, m.num_layers,
      m.num_heads, plan_.tokenizer_vocab, plan_.config.vocab_size,
      plan_.train_stream.size(), m.steps, m.batch_size, m.seq_len,
      m.learning_rate,
      result_.start_step > 0
          ? absl::StrCat("; resuming from step ", result_.start_step)
          : std::string());
}

void Run::LogProgress(int64_t step, double loss, double lr) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
          .count();
  const int64_t done = step - first_update_ + 1;
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (plan_.model.steps - step) / rate : 0;
  const int width = 20;
  const int filled = static_cast<int>(width * step / plan_.model.steps);
  spdlog::info(
      "{} [{}{}] {}/{} loss {:.4f} lr {:.2e} {:.1f} steps/s eta {:.0f}s",
      plan_.model_name, std::string(filled, '#'),
      std::string(width - filled, '.'), step, plan_.model.steps, loss, lr, rate,
      eta);
}

TrainRunResult Run::Finish(bool complete) {
  result_.final_step = trainer_->step();
  result_.complete = complete;
  if (!history_.empty()) {
    result_.last_train_loss = history_.back().train_loss;
    result_.last_heldout_loss = history_.back().heldout_loss;
  }
  return result_;
}

absl::StatusOr<TrainRunResult> Run::Train(int64_t start) {
  const TrainPreset& m = plan_.model;
  ASSIGN_OR_RETURN(TokenBatcher batcher,
                   TokenBatcher::Create(plan_.train_stream, m.seq_len,
                                        m.batch_size, o_.seed));
  const LrSchedule lr = train_internal::ScheduleOf(m);
  const int64_t lines = std::max(1, o_.log_lines);
  const int64_t log_every = (m.steps + lines - 1) / lines;
  started_ = std::chrono::steady_clock::now();
  first_update_ = start + 1;
  double interval_sum = 0;
  int64_t interval_n = 0;
  for (int64_t step = start + 1; step <= m.steps; ++step) {
    const std::vector<int32_t> tokens = batcher.Batch(step);
    ASSIGN_OR_RETURN(const double loss,
                     trainer_->Step(tokens, m.batch_size, lr.At(step)));
    interval_sum += loss;
    ++interval_n;
    if (step % log_every == 0 || step == m.steps) {
      LogProgress(step, loss, lr.At(step));
    }
    if (std::binary_search(plan_.schedule.begin(), plan_.schedule.end(),
                           step)) {
      RETURN_IF_ERROR(Checkpoint(step, interval_sum / interval_n));
      interval_sum = 0;
      interval_n = 0;
    }
    if (o_.stop_after > 0 && step == o_.stop_after && step < m.steps) {
      spdlog::warn("{}: stopping after update {} as asked (--stop-after)",
                   plan_.model_name, step);
      return Finish(false);
    }
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
          .count();
  spdlog::info(
      "{}: trained to step {} in {:.1f}s; held-out loss {:.4f} "
      "(unigram {:.4f})",
      plan_.model_name, m.steps, took, history_.back().heldout_loss,
      plan_.unigram_loss);
  return Finish(true);
}

absl::StatusOr<TrainRunResult> Run::Go() {
  ASSIGN_OR_RETURN(ResumePoint resume, train_internal::Inspect(o_, plan_));
  RETURN_IF_ERROR(Prepare(std::move(resume)));
  result_.model_name = plan_.model_name;
  result_.model_dir = p_.model_dir;
  result_.num_parameters = trainer_->num_parameters();
  result_.train_tokens = static_cast<int64_t>(plan_.train_stream.size());
  result_.unigram_heldout_loss = plan_.unigram_loss;
  result_.start_step = trainer_->step();
  // A resumed state is always at a checkpoint; rewrite its folder if a
  // kill (between publishing it and saving the state) or a user lost it.
  const int64_t start = trainer_->step();
  std::error_code ec;
  if (start == 0 ||
      !fs::exists(absl::StrCat(p_.model_dir, "/step", start), ec)) {
    RETURN_IF_ERROR(
        Checkpoint(start, history_.empty() || start == 0
                              ? std::numeric_limits<double>::quiet_NaN()
                              : history_.back().train_loss));
  }
  if (already_complete_) {
    spdlog::info("{}: already trained to step {} in {}", plan_.model_name,
                 plan_.model.steps, p_.model_dir);
    return Finish(true);
  }
  LogStart();
  return Train(start);
}

}  // namespace

absl::StatusOr<TrainRunResult> RunTraining(const TrainRunOptions& options) {
  ASSIGN_OR_RETURN(Plan plan, train_internal::MakePlan(options));
  if (train_internal::AlreadyTrained(plan, options)) {
    spdlog::info("{}: already trained to step {} in {}", plan.model_name,
                 plan.model.steps, plan.paths.model_dir);
    TrainRunResult result;
    result.model_name = plan.model_name;
    result.model_dir = plan.paths.model_dir;
    result.start_step = result.final_step = plan.model.steps;
    result.complete = true;
    return result;
  }
  RETURN_IF_ERROR(train_internal::CompletePlan(options, plan));
  Run run(options, std::move(plan));
  return run.Go();
}

}  // namespace garden
