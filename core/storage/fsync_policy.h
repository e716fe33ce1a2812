// FsyncPolicy: when an update's log record reaches the disk, relative to
// its answer (docs/durability.md has what each setting can lose).
#ifndef LEPTON_CORE_STORAGE_FSYNC_POLICY_H_
#define LEPTON_CORE_STORAGE_FSYNC_POLICY_H_

namespace lepton {

enum class FsyncPolicy {
  kAlways,    // an update is answered once its record is fsynced
  kInterval,  // answered at once; fsync at most every interval
  kNever,     // answered at once; the OS writes back when it likes
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORAGE_FSYNC_POLICY_H_
