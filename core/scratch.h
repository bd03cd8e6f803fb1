// Per-thread scratch containers: a request path keeps its large temporary vectors and strings
// thread_local and reuses them for the next request (no allocation and page faults per
// request); ScratchReleaser gives the memory back when one request grew a container beyond a
// bound, so that an outsized request does not pin its memory for the thread's life.
#pragma once

#include <cstddef>

namespace suanli {

template <typename Container>
class ScratchReleaser {
 public:
  ScratchReleaser(Container& scratch, size_t max_bytes)
      : scratch_(scratch), max_bytes_(max_bytes) {}
  ~ScratchReleaser() {
    if (scratch_.capacity() * sizeof(typename Container::value_type) > max_bytes_) {
      Container().swap(scratch_);
    }
  }
  ScratchReleaser(const ScratchReleaser&) = delete;
  ScratchReleaser& operator=(const ScratchReleaser&) = delete;

 private:
  Container& scratch_;
  const size_t max_bytes_;
};

// What a request path keeps per thread between requests, per container.
inline constexpr size_t kMaxKeptScratchBytes = 1 << 20;

}  // namespace suanli
