// WorkerPool: tasks start in submission order, Shutdown() runs every task
// already queued before it joins, nothing is accepted after it, and the
// workers run at the requested niceness.
#include "server/worker_pool.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/util/mutex.h"

namespace lepton::server {
namespace {

TEST(WorkerPoolTest, OneWorkerRunsTasksInSubmissionOrder) {
  Mutex mu;
  std::vector<int> order;
  {
    WorkerPool pool(/*threads=*/1, /*nice=*/0);
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(pool.Submit([&mu, &order, i] {
        MutexLock lock(&mu);
        order.push_back(i);
      }));
    }
  }  // the destructor drains
  MutexLock lock(&mu);
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
}

TEST(WorkerPoolTest, ShutdownRunsEveryQueuedTaskThenRejects) {
  for (int threads : {1, 2, 4}) {
    WorkerPool pool(threads, /*nice=*/0);
    absl::Notification release;
    std::atomic<int> ran{0};
    // Block every worker so that the rest stays queued.
    for (int i = 0; i < threads; ++i) {
      ASSERT_TRUE(pool.Submit([&] {
        release.WaitForNotification();
        ran.fetch_add(1);
      }));
    }
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(pool.Submit([&] { ran.fetch_add(1); }));
    }
    std::thread stopper([&] { pool.Shutdown(); });
    // Shutdown() cannot finish while the workers are blocked.
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_LT(ran.load(), threads + 500);
    release.Notify();
    stopper.join();
    EXPECT_EQ(ran.load(), threads + 500) << threads << " threads";
    EXPECT_FALSE(pool.Submit([&] { ran.fetch_add(1); }));
    pool.Shutdown();  // idempotent
    EXPECT_EQ(ran.load(), threads + 500);
  }
}

TEST(WorkerPoolTest, TasksFromManyThreadsAllRun) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(/*threads=*/2, /*nice=*/0);
    std::vector<std::thread> submitters;
    for (int t = 0; t < 4; ++t) {
      submitters.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) {
          EXPECT_TRUE(pool.Submit([&] { ran.fetch_add(1); }));
        }
      });
    }
    for (std::thread& t : submitters) t.join();
  }
  EXPECT_EQ(ran.load(), 4000);
}

TEST(WorkerPoolTest, WorkersRunAtTheRequestedNiceness) {
  const int base = getpriority(PRIO_PROCESS, gettid());
  std::atomic<int> seen{-100};
  {
    WorkerPool pool(/*threads=*/1, /*nice=*/5);
    ASSERT_TRUE(
        pool.Submit([&] { seen = getpriority(PRIO_PROCESS, gettid()); }));
  }
  EXPECT_EQ(seen.load(), std::min(base + 5, 19));
  EXPECT_EQ(getpriority(PRIO_PROCESS, gettid()), base);  // ours unchanged
}

}  // namespace
}  // namespace lepton::server
