// The training corpus of Garden's own small Pythia-like suites: the Debian
// `fortunes` files, with a held-out split, the two dataset variants Pythia
// trains on (standard and deduplicated), and a LAMBADA-style cloze set made
// from the held-out documents.
//
// Everything here is deterministic: the same files (and seed) give the same
// documents in the same order on every run and machine. Random draws use
// std::mt19937_64, whose output the standard fixes, and never the standard
// library's distributions or std::shuffle, whose algorithms it does not.
#ifndef GARDEN_COMMON_TRAIN_CORPUS_H_
#define GARDEN_COMMON_TRAIN_CORPUS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace garden {

struct CorpusOptions {
  std::string dir = "/usr/share/games/fortunes";
  // Share of the unique documents held out, in [0, 1]. A document is held
  // out when the 64-bit XXH3 hash of its text, read as a number in [0, 1),
  // is below this: the split depends on nothing but the text, so it is the
  // same on every run, for every seed and variant, and a document keeps its
  // side when other files are added or removed.
  double heldout_fraction = 0.05;
};

struct Corpus {
  // Unique training documents in order of first appearance: by file name
  // (bytewise), then by position in the file.
  std::vector<std::string> train;
  // Unique held-out documents, in the same order; none is in `train`.
  std::vector<std::string> heldout;
  // Exact duplicates of an earlier document (in any file), dropped.
  size_t duplicates_removed = 0;
  // The files read, and those skipped for not being UTF-8, by name.
  std::vector<std::string> files;
  std::vector<std::string> skipped_not_utf8;
};

// Reads the fortune files directly in `options.dir`. A fortune file holds
// entries separated by lines that are a lone "%" (a trailing "\r" allowed).
// Which entries in `dir` are read:
//   - names starting with "." or ending in ".dat" (strfile's binary
//     indexes) are ignored, as is whatever is not a regular file after
//     following symbolic links (subdirectories such as off/, with its rot13
//     offensive fortunes);
//   - a file whose bytes equal those of a file read before it is skipped:
//     Debian's "X.u8" files are links to "X";
//   - a file that is not valid UTF-8 as a whole is skipped (and listed in
//     `skipped_not_utf8`): it is in some legacy encoding that cannot be
//     guessed, and its UTF-8 version, where there is one, is "X.u8".
// Each entry is one document: blank lines at its start are dropped (the
// indentation of its first line is kept), trailing whitespace is trimmed,
// and entries left empty are dropped. Exact duplicates after that are
// dropped, the first occurrence kept.
// NOT_FOUND if `dir` is missing, INVALID_ARGUMENT for a fraction outside
// [0, 1], FAILED_PRECONDITION ("no documents") if no document is found.
absl::StatusOr<Corpus> LoadFortunes(const CorpusOptions& options);

enum class CorpusVariant {
  kStandard,  // documents repeated as web text repeats them
  kDeduped,   // each document once, as in Pythia's deduplicated Pile
};

// How often kStandard repeats each unique document. With u uniform in (0, 1],
//   r = min(max_repeats, floor(u^(-1/alpha))),
// a discrete Pareto law: P(r >= k) = k^(-alpha) below the cap. With the
// defaults, 75% of documents appear once, 1% ten times or more, and the mean
// is about 1.63 copies, close to the Pile's ratio to its deduplicated version
// (about 1.5 times the tokens), with the heavy tail of a few documents
// repeated very often that web corpora show.
// (Nonsensical values are taken at their limits: alpha <= 0 repeats every
// document max_repeats times, max_repeats < 1 means 1.)
struct RepetitionOptions {
  double alpha = 2.0;  // smaller means a heavier tail
  int max_repeats = 100;
};

// The training documents of one variant, shuffled with `seed`:
//   kDeduped: each document of corpus.train once;
//   kStandard: each document of corpus.train r times, r drawn as above.
// The draws come from one std::mt19937_64 seeded with `seed`: first r for
// each document in corpus.train order (kStandard only), then a Fisher-Yates
// shuffle of the whole list (j = the high 64 bits of the 128-bit product of
// a draw and i + 1). The held-out documents are never included.
std::vector<std::string> VariantDocuments(const Corpus& corpus,
                                          CorpusVariant variant, uint64_t seed);
std::vector<std::string> VariantDocuments(const Corpus& corpus,
                                          CorpusVariant variant, uint64_t seed,
                                          const RepetitionOptions& repetition);

// LAMBADA-style cloze examples, in the format of lambada_openai: each is a
// passage whose last word is the target, to be predicted from all before it
// (" " + the word is the continuation scored). From each held-out document,
// in order:
//   1. A closing attribution is cut: from the last line that starts, after
//      indentation, with "--", provided it is not the first line and every
//      line after it is indented (a continued attribution). A name after
//      "--" cannot be inferred from the text.
//   2. Runs of ASCII whitespace become one space; the ends are trimmed.
//   3. Trailing characters that are not letters (Unicode general category
//      L) are cut: closing punctuation, quotes, digits, smileys.
//   4. The target, the text after the last space, must be made only of
//      letters and be at least 2 characters (code points) long.
//   5. There must be at least 8 words (space-separated) before it, and at
//      least 3 in 4 of those must hold a letter, which leaves out ASCII art
//      and tables.
// Documents failing 4 or 5 give nothing; an example equal to an earlier one
// is dropped. Deterministic.
std::vector<std::string> ClozeExamples(const std::vector<std::string>& heldout);

// Writes one JSON object {"text": example} per line (lambada_openai's
// format), atomically (common/base/files.h). Invalid UTF-8 in an example is
// written as U+FFFD.
absl::Status WriteClozeJsonl(const std::vector<std::string>& examples,
                             const std::string& path);

}  // namespace garden

#endif  // GARDEN_COMMON_TRAIN_CORPUS_H_
