// lepton::Mutex: the one lock type of the core, with Abseil's thread-safety
// annotations, so clang's -Wthread-safety checks every ABSL_GUARDED_BY.
//
// In normal builds it is absl::Mutex. In ThreadSanitizer builds
// (LEPTON_TSAN_MUTEX, set by -DLEPTON_SANITIZE=thread) it is std::shared_mutex:
// Debian's prebuilt Abseil is not TSan-instrumented, so TSan cannot see an
// absl::Mutex synchronize and would report races that are not there, while it
// does understand the libstdc++ lock.
//
// Thread safety: all methods may be called from any thread.
#ifndef LEPTON_CORE_UTIL_MUTEX_H_
#define LEPTON_CORE_UTIL_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

#ifdef LEPTON_TSAN_MUTEX
#include <chrono>
#include <condition_variable>
#include <shared_mutex>
#else
#include "absl/synchronization/mutex.h"
#endif

namespace lepton {

class ABSL_LOCKABLE Mutex {
 public:
  friend class CondVar;

  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

#ifdef LEPTON_TSAN_MUTEX
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
#else
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.Lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.ReaderLock(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.ReaderUnlock(); }

 private:
  absl::Mutex mu_;
#endif
};

// A condition variable over lepton::Mutex (absl::CondVar, or
// std::condition_variable_any in TSan builds). Wait with `mu` held; it is
// released while waiting and held again on return. Wake-ups may be spurious:
// wait in a loop on the condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

#ifdef LEPTON_TSAN_MUTEX
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { cv_.wait(mu->mu_); }
  // Returns true if it timed out.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return cv_.wait_for(mu->mu_, absl::ToChronoNanoseconds(timeout)) ==
           std::cv_status::timeout;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
#else
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { cv_.Wait(&mu->mu_); }
  // Returns true if it timed out.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return cv_.WaitWithTimeout(&mu->mu_, timeout);
  }
  void Signal() { cv_.Signal(); }
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
#endif
};

// Holds `mu` exclusively for the scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Holds `mu` shared for the scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_UTIL_MUTEX_H_
