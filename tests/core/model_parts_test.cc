// Tests of the parts of a Model that have contracts of their own: the
// update-id window (core/store/update_id_window.h), the retained versions
// (core/store/retained_versions.h) and the commit queue
// (core/store/commit_queue.h).
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/adaptation/model_adaptation.h"
#include "core/learning/learner.h"
#include "core/learning/model_spec.h"
#include "core/learning/versioned_params.h"
#include "core/store/commit_queue.h"
#include "core/store/published_version.h"
#include "core/store/retained_versions.h"
#include "core/store/update_id_window.h"
#include "gtest/gtest.h"

namespace lepton {
namespace {

UpdateResult ResultAt(uint64_t version) {
  UpdateResult r;
  r.version = version;
  r.examples = static_cast<int64_t>(version);
  return r;
}

std::vector<std::string> Ids(const std::vector<RecentUpdate>& recent) {
  std::vector<std::string> ids;
  for (const RecentUpdate& r : recent) ids.push_back(r.update_id);
  return ids;
}

TEST(UpdateIdWindowTest, RemembersTheNewestIdsUpToItsCapacity) {
  UpdateIdWindow window(2);
  window.Remember("a", ResultAt(2), 10);
  window.Remember("b", ResultAt(3), 20);
  window.Remember("c", ResultAt(4), 30);
  EXPECT_EQ(window.Find("a"), nullptr);  // the oldest, forgotten
  ASSERT_NE(window.Find("b"), nullptr);
  EXPECT_EQ(window.Find("b")->result.version, 3u);
  EXPECT_EQ(window.Find("b")->log_position, 20u);
  ASSERT_NE(window.Find("c"), nullptr);
  EXPECT_EQ(window.Find("c")->result.version, 4u);
}

TEST(UpdateIdWindowTest, IgnoresEmptyIdsRepeatsAndAZeroCapacity) {
  UpdateIdWindow window(8);
  window.Remember("", ResultAt(2), 10);
  EXPECT_EQ(window.Find(""), nullptr);
  window.Remember("a", ResultAt(2), 10);
  window.Remember("a", ResultAt(5), 50);  // a repeat keeps the original
  EXPECT_EQ(window.Find("a")->result.version, 2u);
  EXPECT_EQ(window.UpTo(100).size(), 1u);

  UpdateIdWindow none(0);
  none.Remember("a", ResultAt(2), 10);
  EXPECT_EQ(none.Find("a"), nullptr);
}

TEST(UpdateIdWindowTest, UpToListsTheIdsOfVersionsUpToItOldestFirst) {
  UpdateIdWindow window(8);
  window.Remember("a", ResultAt(2), 0);
  window.Remember("b", ResultAt(3), 0);
  window.Remember("c", ResultAt(4), 0);
  EXPECT_EQ(Ids(window.UpTo(3)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Ids(window.UpTo(4)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(window.UpTo(1).empty());
}

// Versions of a small linear model, committed by one learner.
class VersionsTest : public ::testing::Test {
 protected:
  VersionsTest() : spec_(MakeSpec()), learner_(*spec_), adaptation_(spec_) {}

  static std::shared_ptr<const ModelSpec> MakeSpec() {
    auto spec = std::make_shared<ModelSpec>();
    spec->type = ModelType::kLinearRegression;
    spec->num_features = 3;
    return spec;
  }

  // Version `v`, committed after the one made before it, as a model does.
  std::shared_ptr<const PublishedVersion> Version(uint64_t v) {
    ModelCounters counters;
    counters.updates = v - 1;
    last_ = std::make_shared<const PublishedVersion>(learner_.Commit(v), spec_,
                                                     counters, absl::Now(),
                                                     adaptation_.Commit(v));
    return last_;
  }

  std::shared_ptr<const ModelSpec> spec_;
  Learner learner_;
  ModelAdaptation adaptation_;
  std::shared_ptr<const PublishedVersion> last_;
};

TEST_F(VersionsTest, RetainsTheNewestAndNamesTheRangeWhenAsked) {
  RetainedVersions retained("m", 2);
  retained.Publish(Version(1));
  retained.Publish(Version(2));
  std::shared_ptr<const PublishedVersion> held = retained.Latest();
  retained.Publish(Version(3));
  EXPECT_EQ(retained.Latest()->version(), 3u);
  EXPECT_EQ((*retained.Get(0))->version(), 3u);
  EXPECT_EQ((*retained.Get(2))->version(), 2u);

  absl::Status evicted = retained.Get(1).status();
  EXPECT_TRUE(absl::IsNotFound(evicted)) << evicted;
  EXPECT_TRUE(absl::StrContains(
      evicted.message(), "is no longer retained; retained versions are 2 to 3"))
      << evicted;
  absl::Status future = retained.Get(4).status();
  EXPECT_TRUE(absl::IsNotFound(future)) << future;
  EXPECT_TRUE(absl::StrContains(future.message(), "the newest is 3")) << future;

  std::vector<uint64_t> all;
  for (const auto& v : retained.All()) all.push_back(v->version());
  EXPECT_EQ(all, (std::vector<uint64_t>{2, 3}));
  // A version held by a reader outlives its eviction.
  retained.Publish(Version(4));
  EXPECT_EQ(held->version(), 2u);
  EXPECT_EQ(held->counters().updates, 1u);
}

TEST_F(VersionsTest, ACapacityBelowOneKeepsOne) {
  RetainedVersions retained("m", 0);
  retained.Publish(Version(1));
  retained.Publish(Version(2));
  EXPECT_EQ(retained.All().size(), 1u);
  EXPECT_EQ(retained.Latest()->version(), 2u);
}

// Records what a batch's answers did, in order.
struct Answers {
  std::vector<std::string> log;

  UpdateCallback Done(const std::string& name) {
    return [this, name](absl::StatusOr<UpdateResult> r) {
      log.push_back(r.ok() ? absl::StrCat(name, " ok v", r->version)
                           : absl::StrCat(name, " ", r.status().message()));
    };
  }
  auto Emit() {
    return [this](std::vector<ModelEvent> events, uint64_t version) {
      log.push_back(absl::StrCat("events v", version, " x", events.size()));
    };
  }
};

TEST_F(VersionsTest, CommitQueuePublishesWhatIsDurableInLogOrder) {
  RetainedVersions retained("m", 8);
  retained.Publish(Version(1));
  CommitQueue queue(&retained);
  Answers answers;
  auto add = [&](uint64_t v, uint64_t position, const std::string& name) {
    CommitQueue::Pending p;
    p.version = v == 0 ? nullptr : Version(v);
    p.log_position = position;
    p.result = ResultAt(v == 0 ? 2 : v);
    p.done = answers.Done(name);
    if (v != 0) p.events.resize(1);
    queue.Add(std::move(p));
  };
  add(2, 100, "u2");
  add(3, 200, "u3");
  add(0, 100, "retry of u2");  // waits for u2's record only
  add(4, 300, "u4");

  // Nothing is published before it is durable.
  EXPECT_TRUE(queue.TakeDurable(99).empty());
  EXPECT_EQ(retained.Latest()->version(), 1u);

  CommitQueue::Batch durable = queue.TakeDurable(200);
  EXPECT_EQ(retained.Latest()->version(), 3u);
  AnswerAll(std::move(durable), answers.Emit());
  EXPECT_EQ(answers.log, (std::vector<std::string>{"events v2 x1", "u2 ok v2",
                                                   "events v3 x1", "u3 ok v3",
                                                   "retry of u2 ok v2"}));

  // After a failed sync the rest fail, unpublished.
  answers.log.clear();
  FailAll(queue.TakeAll(), absl::UnavailableError("sync failed"));
  EXPECT_EQ(answers.log, (std::vector<std::string>{"u4 sync failed"}));
  EXPECT_EQ(retained.Latest()->version(), 3u);
  EXPECT_TRUE(queue.TakeDurable(1000).empty());
}

}  // namespace
}  // namespace lepton
