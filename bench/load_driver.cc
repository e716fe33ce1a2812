#include "bench/load_driver.h"

#include <grpcpp/support/sync_stream.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "bench/bench_support.h"

namespace lepton::bench {
namespace {

// One client thread's share of a closed loop and what it measured.
struct Share {
  std::vector<std::unique_ptr<UnaryCaller>> callers;
  std::vector<int> indices;  // of callers, in RunClosedLoop's numbering
  ClosedLoopResult result;
};

void Drive(Share* share, Clock::time_point measure_from,
           Clock::time_point stop_at) {
  grpc::CompletionQueue cq;
  for (auto& caller : share->callers) caller->Start(&cq);
  size_t outstanding = share->callers.size();
  ClosedLoopResult& r = share->result;
  // Enough for a 3 s window at 60,000 calls/s without growing mid-run.
  r.latencies_ns.reserve(1 << 18);
  while (outstanding > 0) {
    void* tag;
    bool ok;
    if (!cq.Next(&tag, &ok)) break;
    const Clock::time_point now = Clock::now();
    auto* caller = static_cast<UnaryCaller*>(tag);
    const bool succeeded = ok && caller->status().ok();
    if (!succeeded) {
      if (r.errors++ == 0) r.first_error = Describe(caller->status());
    } else {
      ++r.completed;
    }
    if (succeeded && now >= measure_from && now <= stop_at) {
      ++r.calls;
      ++caller->window_calls;
      if (caller->started >= measure_from) {
        r.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                now - caller->started)
                .count());
      }
    }
    if (now < stop_at) {
      caller->Start(&cq);
    } else {
      --outstanding;
    }
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

ClosedLoopResult RunClosedLoop(
    const ClosedLoopOptions& options,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const CallerFactory& make_caller) {
  const int threads =
      std::max(1, std::min(options.client_threads, options.callers));
  std::vector<Share> shares(threads);
  for (int i = 0; i < options.callers; ++i) {
    shares[i % threads].callers.push_back(make_caller(
        options.channel_per_caller ? channels[i] : channels[i % threads], i));
    shares[i % threads].indices.push_back(i);
  }
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + options.warmup;
  const Clock::time_point stop_at = measure_from + options.duration;
  std::vector<std::thread> workers;
  for (Share& share : shares) {
    workers.emplace_back(Drive, &share, measure_from, stop_at);
  }
  if (options.on_window) {
    std::this_thread::sleep_until(measure_from);
    options.on_window(true);
    std::this_thread::sleep_until(stop_at);
    options.on_window(false);
  }
  for (std::thread& worker : workers) worker.join();

  ClosedLoopResult total;
  total.window_seconds = Seconds(stop_at - measure_from);
  total.caller_calls.assign(options.callers, 0);
  for (Share& share : shares) {
    for (size_t j = 0; j < share.callers.size(); ++j) {
      total.caller_calls[share.indices[j]] = share.callers[j]->window_calls;
    }
    ClosedLoopResult& r = share.result;
    total.calls += r.calls;
    total.completed += r.completed;
    total.latencies_ns.insert(total.latencies_ns.end(), r.latencies_ns.begin(),
                              r.latencies_ns.end());
    if (total.errors == 0) total.first_error = r.first_error;
    total.errors += r.errors;
  }
  return total;
}

UpdateStreams::UpdateStreams(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const std::vector<v1::UpdateRequest>* pool)
    : pool_(pool), start_(Clock::now()), per_stream_(channels.size()) {
  for (size_t i = 0; i < channels.size(); ++i) {
    threads_.emplace_back(&UpdateStreams::Run, this, channels[i],
                          static_cast<int>(i), &per_stream_[i]);
  }
}

void UpdateStreams::Run(std::shared_ptr<grpc::Channel> channel, int index,
                        StreamTotals* totals) {
  auto fail = [totals](const std::string& error) {
    if (totals->errors++ == 0) totals->first_error = error;
  };
  std::unique_ptr<v1::ModelService::Stub> stub =
      v1::ModelService::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->StreamUpdate(&context);
  v1::UpdateResponse response;
  size_t next = static_cast<size_t>(index) * 7 % pool_->size();
  bool broken = false;
  while (!stop_.load(std::memory_order_relaxed)) {
    const v1::UpdateRequest& request = (*pool_)[next];
    next = next + 1 == pool_->size() ? 0 : next + 1;
    // A failed Write or Read means the server ended the stream; Finish()
    // below says why.
    if (!stream->Write(request) || !stream->Read(&response)) {
      broken = true;
      break;
    }
    ++totals->updates;
    totals->examples += response.examples();
  }
  if (!broken) stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok()) {
    fail(absl::StrCat("StreamUpdate: ", Describe(status)));
  } else if (broken) {
    fail("StreamUpdate: the stream ended early with OK");
  }
}

StreamTotals UpdateStreams::Stop() {
  if (threads_.empty()) return totals_;
  stop_.store(true, std::memory_order_relaxed);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  totals_.seconds = Seconds(Clock::now() - start_);
  for (const StreamTotals& s : per_stream_) {
    totals_.updates += s.updates;
    totals_.examples += s.examples;
    if (totals_.errors == 0) totals_.first_error = s.first_error;
    totals_.errors += s.errors;
  }
  return totals_;
}

}  // namespace lepton::bench
