// ExamplePrefetcher: reads an example file on threads of its own, a few
// batches ahead of the caller, so that parsing the file overlaps with what
// the caller does with the batches (`train` streams them to the server,
// `eval` sends them to Predict).
//
//   ExamplePrefetcher prefetcher(std::move(reader), {.batch_size = 256});
//   while (true) {
//     absl::StatusOr<ExampleBatch*> batch = prefetcher.Next();
//     if (!batch.ok()) ...            // the file's error, after every batch
//                                     // before the bad line's
//     if (*batch == nullptr) break;   // the end of the file
//     ...                             // (*batch)->examples, ->lines: the
//                                     // caller's until the next Next()
//   }
//
// Threads: with `threads` 1 (the default), one thread reads and parses. With
// N > 1, one thread cuts the file into the text of batches and N threads
// parse them, in parallel, and the batches still come in the file's order.
// (CSV with num_features 0 is read by one thread: the first line decides
// the width.)
//
// Backpressure: at most `depth` batches wait ready; the reading threads then
// sleep until the caller takes one. The prefetcher owns depth + threads + 1
// batches (those waiting, the caller's and those being filled) and recycles
// them, with their examples' arrays, so memory stays bounded whatever the
// file's size and the file is read without an allocation per line.
//
// A batch holds batch_size examples, except the last one. The bad line's
// batch is not delivered: the error comes instead, as ExampleReader reports
// it (file, line, column).
//
// Thread safety: one thread calls Next(). The destructor stops the reading
// threads (after the batch each is on) and joins them.
#ifndef LEPTON_CLIENT_EXAMPLE_PREFETCHER_H_
#define LEPTON_CLIENT_EXAMPLE_PREFETCHER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/example_file.h"

namespace lepton::client {

class ExamplePrefetcher {
 public:
  struct Options {
    int batch_size = 256;  // >= 1
    int depth = 4;         // ready batches waiting for the caller, >= 1
    int threads = 1;       // parsing threads, >= 1
  };

  ExamplePrefetcher(std::unique_ptr<ExampleReader> reader,
                    const Options& options);
  ~ExamplePrefetcher();
  ExamplePrefetcher(const ExamplePrefetcher&) = delete;
  ExamplePrefetcher& operator=(const ExamplePrefetcher&) = delete;

  // The next batch (the previous one goes back to the reading threads),
  // null at the end of the file, or the reader's error; the same at every
  // later call.
  absl::StatusOr<ExampleBatch*> Next() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A batch on its way: its text (threads > 1), then its examples.
  struct Slot {
    BatchText text;
    ExampleBatch batch;
    absl::Status status;  // the parse's
    bool parsed = false;
  };

  // threads == 1: reads and parses into free slots.
  void ReadLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // threads > 1: cuts the text of batches into free slots ...
  void SplitLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Fills free slots with `fill` (without the lock) and hands each to
  // `queue` (under it) until the file ends or fails.
  void FillLoop(absl::FunctionRef<absl::StatusOr<int>(Slot*)> fill,
                absl::FunctionRef<void(Slot*)> queue) ABSL_LOCKS_EXCLUDED(mu_);
  // ... which these parse, each on a thread.
  void ParseLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // A free slot, or null once stopping.
  Slot* TakeFreeSlot() ABSL_LOCKS_EXCLUDED(mu_);
  // No more slots will come: the end of the file, or `status`.
  void EndReading(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  const std::unique_ptr<ExampleReader> reader_;  // the reading thread's
  const Options options_;
  const ExampleFileOptions file_options_;  // for the parsing threads
  const std::string file_name_;
  std::vector<std::unique_ptr<Slot>> slots_;  // owns them all

  absl::Mutex mu_;
  std::vector<Slot*> free_ ABSL_GUARDED_BY(mu_);
  std::deque<Slot*> to_parse_ ABSL_GUARDED_BY(mu_);  // threads > 1
  // Slots with text or examples, in the file's order.
  std::deque<Slot*> in_order_ ABSL_GUARDED_BY(mu_);
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status read_error_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // The caller's.
  Slot* current_ = nullptr;
  absl::Status error_;

  std::vector<std::thread> threads_;  // last: start once the rest exists
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_EXAMPLE_PREFETCHER_H_
