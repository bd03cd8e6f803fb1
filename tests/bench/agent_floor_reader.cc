// agent_floor_reader: the least any sampling agent can do on this host, as a yardstick for
// tests/bench/agent_vs_node_exporter.sh. It opens the files given on the command line once and,
// every INTERVAL_MS, wakes on an absolute timer and reads each of them whole with one pread into
// a buffer, keeping nothing: no parsing, no encoding, no spool, no sending.
//
//   agent_floor_reader INTERVAL_MS FILE...
//   agent_floor_reader --warm FILE...
//
// --warm reads each file 5000 times back to back and prints the wall time per read: the files'
// cost with warm caches and no wake-up, beside the paced figure above.
// Its CPU time per wake-up is the floor of the agent's CPU per sweep (the kernel's cost of
// waking a thread and generating the /proc and /sys files), and its resident memory is the
// floor of a dynamically linked C++ program's. Runs until killed.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

// Wall time per pread of each file, read `kReads` times in a row.
int ReadWarm(const std::vector<int>& fds, char** names, std::vector<char>& buffer) {
  constexpr int kReads = 5000;
  double total_us = 0;
  for (size_t i = 0; i < fds.size(); ++i) {
    ssize_t n = 0;
    timespec start{}, end{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int k = 0; k < kReads; ++k) {
      n = pread(fds[i], buffer.data(), buffer.size(), 0);
      if (n < 0) {
        std::perror(names[i]);
        return 1;
      }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    const double us =
        ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / 1e3 / kReads;
    total_us += us;
    std::printf("%8.2f us %6zd B %s\n", us, n, names[i]);
  }
  std::printf("%8.2f us per pass over %zu files\n", total_us, fds.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s INTERVAL_MS|--warm FILE...\n", argv[0]);
    return 2;
  }
  const bool warm = std::string_view(argv[1]) == "--warm";
  const long interval_ms = warm ? 0 : std::atol(argv[1]);
  if (!warm && interval_ms <= 0) {
    std::fprintf(stderr, "%s: INTERVAL_MS must be a positive number of milliseconds\n", argv[0]);
    return 2;
  }
  std::vector<int> fds;
  for (int i = 2; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror(argv[i]);
      return 1;
    }
    fds.push_back(fd);
  }
  // As large as the agent's largest /proc buffer: one pread returns the whole file.
  std::vector<char> buffer(1 << 16);
  if (warm) return ReadWarm(fds, argv + 2, buffer);
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    next.tv_nsec += interval_ms % 1000 * 1000000;
    next.tv_sec += interval_ms / 1000 + next.tv_nsec / 1000000000;
    next.tv_nsec %= 1000000000;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
    for (int fd : fds) {
      if (pread(fd, buffer.data(), buffer.size(), 0) < 0) {
        std::perror("pread");
        return 1;
      }
    }
  }
}
