// ExamplePrefetcher: reads an example file on a thread of its own, a few
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
// Backpressure: at most `depth` batches wait ready; the reading thread then
// sleeps until the caller takes one. The prefetcher owns depth + 2 batches
// (those waiting, the caller's and the one being filled) and recycles them,
// with their examples' arrays, so memory stays bounded whatever the file's
// size and the file is read without an allocation per line.
//
// A batch holds batch_size examples, except the last one. The bad line's
// batch is not delivered: the error comes instead, as ExampleReader reports
// it (file, line, column).
//
// Thread safety: one thread calls Next(). The destructor stops the reading
// thread (after the batch it is reading) and joins it.
#ifndef LEPTON_CLIENT_EXAMPLE_PREFETCHER_H_
#define LEPTON_CLIENT_EXAMPLE_PREFETCHER_H_

#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
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
  };

  ExamplePrefetcher(std::unique_ptr<ExampleReader> reader,
                    const Options& options);
  ~ExamplePrefetcher();
  ExamplePrefetcher(const ExamplePrefetcher&) = delete;
  ExamplePrefetcher& operator=(const ExamplePrefetcher&) = delete;

  // The next batch (the previous one goes back to the reading thread), null
  // at the end of the file, or the reader's error; the same at every later
  // call.
  absl::StatusOr<ExampleBatch*> Next() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void ReadLoop() ABSL_LOCKS_EXCLUDED(mu_);

  const std::unique_ptr<ExampleReader> reader_;  // the reading thread's
  const Options options_;
  std::vector<std::unique_ptr<ExampleBatch>> batches_;  // owns them all

  absl::Mutex mu_;
  std::deque<ExampleBatch*> ready_ ABSL_GUARDED_BY(mu_);  // oldest first
  std::vector<ExampleBatch*> free_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // the reading thread has ended
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  ExampleBatch* current_ = nullptr;  // the caller's
  std::thread thread_;               // last: starts once the rest exists
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_EXAMPLE_PREFETCHER_H_
