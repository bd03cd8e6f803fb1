// RocksDbStore's group commit: batches queued in seq order under head_mu are written by one
// leader at a time, in that order, and share one WAL sync; a full disk keeps them for later, a
// failed write is fatal for writing. See rocksdb_store.h ("Durability").
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "aggregator/storage/column_codec.h"
#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/head_log.h"
#include "aggregator/storage/rocksdb_store_impl.h"

namespace suanli::storage {

CommitItem* RocksDbStore::Impl::Enqueue(std::unique_ptr<CommitItem>& item) {
  item->seq = next_seq++;
  std::lock_guard lock(commit_mu);
  queue.push_back(item.get());
  return item.get();
}

Status RocksDbStore::Impl::Fail(const rocksdb::Status& s) {
  // After a WAL error RocksDB cannot tell what reached the disk: stop writing.
  Status status =
      IoError("storage write failed (further writes refused until restart): " + s.ToString());
  if (!write_failed.exchange(true)) {
    spdlog::error("storage: write to {} failed, refusing further writes: {}", options.path,
                  s.ToString());
    if (options.on_write_failed) options.on_write_failed(status);
  }
  return status;
}

// Caller holds commit_mu (in `lock`) and no leader is active: writes every queued item in
// order without sync, then syncs the WAL once for all of them (group commit).
void RocksDbStore::Impl::Lead(std::unique_lock<std::mutex>& lock) {
  if (queue.empty()) return;  // nothing to write (a waiter whose batch another leader has)
  leader_busy = true;
  std::deque<CommitItem*> group;
  group.swap(queue);
  lock.unlock();
  Status status;
  bool keep = false;  // the disk is full: keep the group for TryResume
  if (write_failed.load()) {
    status = IoError("storage refuses writes after a failed write; restart the aggregator");
  } else if (disk_full.load()) {
    keep = true;  // behind batches not yet written: never before them
  } else {
    rocksdb::WriteOptions wo;
    wo.sync = false;
    rocksdb::Status s;
    for (CommitItem* item : group) {
      s = db->Write(wo, &item->wb);
      if (!s.ok()) break;
    }
    if (s.ok() && options.before_sync) {
      if (Status hook = options.before_sync(); !hook.ok()) {
        s = hook.code() == StatusCode::kResourceExhausted
                ? rocksdb::Status::NoSpace(hook.message())
                : rocksdb::Status::IOError(hook.message());
      }
    }
    if (s.ok()) s = db->SyncWAL();
    if (s.IsNoSpace()) {
      keep = true;
      if (!disk_full.exchange(true)) {
        spdlog::error(
            "storage: {} is out of disk space, refusing writes (503) until there is "
            "room again: {}",
            options.path, s.ToString());
      }
    } else if (!s.ok()) {
      status = Fail(s);
    }
  }
  if (keep) status = DiskFull();
  lock.lock();
  if (!status.ok() && !keep && !group.empty() && group.front()->seq < failed_seq) {
    failed_seq = group.front()->seq;
    failed_status = status;
  }
  for (CommitItem* item : group) {
    // A kept batch is written again as it is: writing one twice in order is harmless (the
    // same keys get the same values), should part of the group have reached RocksDB.
    if (keep) unwritten.emplace_back(item->seq, item->wb);
    item->status = status;
    item->done = true;
    done_seq = std::max(done_seq, item->seq);
    if (!keep) written_seq = std::max(written_seq, item->seq);
  }
  leader_busy = false;
  commit_cv.notify_all();
}

Status RocksDbStore::Impl::WaitCommitted(CommitItem* item) {
  std::unique_lock lock(commit_mu);
  while (!item->done) {
    if (!leader_busy) {
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
  return item->status;
}

Status RocksDbStore::Impl::WaitDurable(uint64_t seq) {
  std::unique_lock lock(commit_mu);
  while (written_seq < seq) {
    if (!unwritten.empty() && unwritten.front().first <= seq) return DiskFull();
    if (!leader_busy) {
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
  return failed_seq <= seq ? failed_status : Status::Ok();
}

bool RocksDbStore::Impl::TryResume() {
  std::unique_lock lock(commit_mu);
  if (leader_busy) return false;  // a leader may be about to keep its group
  if (!disk_full.load()) return true;
  leader_busy = true;  // no leader writes meanwhile
  lock.unlock();
  // RocksDB stops writing after an ENOSPC from the WAL; Resume flushes the memtables and
  // starts a new WAL, so that nothing is appended behind a torn record.
  rocksdb::Status s = db->Resume();
  if (s.ok()) {
    rocksdb::WriteOptions wo;
    wo.sync = false;
    for (auto& [seq, wb] : unwritten) {  // only this thread touches it while leader_busy
      s = db->Write(wo, &wb);
      if (!s.ok()) break;
    }
    if (s.ok()) s = db->SyncWAL();
  }
  const bool fatal = !s.ok() && !s.IsNoSpace() && !s.IsBusy();
  Status failed;
  if (fatal) failed = Fail(s);
  lock.lock();
  if (s.ok()) {
    if (!unwritten.empty()) written_seq = std::max(written_seq, unwritten.back().first);
    spdlog::info(
        "storage: {} has room again; {} batches kept while the disk was full are "
        "written, writing resumes",
        options.path, unwritten.size());
    unwritten.clear();
    disk_full = false;
  } else if (fatal) {
    // Kept batches were refused to their callers; the store now refuses everything.
    if (!unwritten.empty()) written_seq = std::max(written_seq, unwritten.back().first);
    if (!unwritten.empty() && unwritten.front().first < failed_seq) {
      failed_seq = unwritten.front().first;
      failed_status = failed;
    }
    unwritten.clear();
    disk_full = false;
  }
  leader_busy = false;
  commit_cv.notify_all();
  return s.ok();
}

void RocksDbStore::Impl::WaitDone(uint64_t seq) {
  std::unique_lock lock(commit_mu);
  while (done_seq < seq) {
    if (!leader_busy) {
      if (queue.empty()) return;  // nothing left to wait for
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
}

// Every queued item is written (reads under head_mu see all closed chunks). Caller holds
// head_mu, so nothing new is queued meanwhile.
void RocksDbStore::Impl::WaitWritten(uint64_t) {
  std::unique_lock lock(commit_mu);
  while (!queue.empty() || leader_busy) {
    if (!leader_busy) {
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
}

}  // namespace suanli::storage
