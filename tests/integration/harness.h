// Integration-test harness: runs the real binaries (suanli-agent, suanli-aggregator) and a real
// Prometheus on 127.0.0.1, each as a child process whose stdout+stderr go to a log file in the
// test's temporary directory. Tests poll with a deadline (WaitFor, Process::WaitForLog); nothing
// here sleeps a fixed time in place of checking a condition.
// Thread-safety: a Process or PrometheusServer belongs to the test thread that made it; the free
// functions (HttpGet, ParseMetricsText, ...) are safe from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/http_client.h"
#include "core/sample.h"
#include "core/status.h"

namespace suanli::it {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Where the build put the binaries, and the project's fixture trees (tests/fixtures; the
// environment variable SUANLI_TEST_FIXTURES_DIR overrides it, as for the unit tests).
std::string BinDir();
std::string FixturesDir();
std::string AgentBinary();
std::string AggregatorBinary();
inline constexpr const char* kPrometheusBinary = "/usr/bin/prometheus";
inline constexpr const char* kPromtoolBinary = "/usr/bin/promtool";

// A fresh directory under testing::TempDir() with a unique name; removed (recursively) by the
// destructor unless the environment sets SUANLI_IT_KEEP_TMP=1.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "suanli-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `text` to `path` (truncating).
Status WriteFile(const std::string& path, const std::string& text);
std::string ReadFileOrEmpty(const std::string& path);

// Polls `condition` every `interval` until it is true (returns true) or `timeout` passes
// (returns false after one last check).
bool WaitFor(const std::function<bool()>& condition, milliseconds timeout,
             milliseconds interval = milliseconds(50));

// How a child ended: exited with `code`, or was killed by `signal`.
struct ExitStatus {
  bool exited = false;
  int code = -1;
  int signal = 0;
  bool ok() const { return exited && code == 0; }
  std::string ToString() const;
};

// One child process started with posix_spawn; stdout and stderr both go to log_path (stdin is
// /dev/null, or the file stdin_path). The destructor SIGKILLs and reaps it if still running.
class Process {
 public:
  static Result<std::unique_ptr<Process>> Start(const std::string& binary,
                                                const std::vector<std::string>& args,
                                                const std::string& log_path,
                                                const std::string& stdin_path = "/dev/null");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const { return ReadFileOrEmpty(log_path_); }
  size_t LogSize() const { return Log().size(); }
  // The last `max_bytes` of the log, for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

  // Waits until the log, from byte `from_offset` on, matches `pattern`; returns the first
  // capture group (the whole match when the pattern has none). nullopt on timeout, or as soon
  // as the process has exited without the log matching.
  std::optional<std::string> WaitForLog(const std::string& pattern, milliseconds timeout,
                                        size_t from_offset = 0);

  // Sends a signal (no-op once the child has been reaped).
  void Signal(int sig);
  // Waits for the child to end; nullopt when it is still running after `timeout`.
  std::optional<ExitStatus> Wait(milliseconds timeout);
  // True while the child has not exited (reaps it if it has).
  bool Running();

 private:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  bool Reap(bool block);  // true once reaped (exit_ set)

  pid_t pid_;
  std::string log_path_;
  std::optional<ExitStatus> exit_;
};

// Runs a binary to completion with stdout and stderr captured separately.
struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};
Result<RunResult> RunCommand(const std::string& binary, const std::vector<std::string>& args,
                             const std::string& work_dir, milliseconds timeout = seconds(30),
                             const std::string& stdin_text = "");

// A running suanli daemon and the "127.0.0.1:PORT" it logged as bound.
struct Daemon {
  std::unique_ptr<Process> process;
  std::string address;
  std::string Url(const std::string& path) const { return "http://" + address + path; }
};

// Starts suanli-aggregator with --web.listen-address=127.0.0.1:0 and
// --storage.path=<dir>/data (unless extra_args gives --storage.path), logging to
// <dir>/<log_name>, and waits for its "listening on" line.
Result<Daemon> StartAggregator(const std::string& dir, const std::vector<std::string>& extra_args,
                               const std::string& log_name = "aggregator.log");
// Starts suanli-agent with --web.listen-address=127.0.0.1:0 plus extra_args.
Result<Daemon> StartAgent(const std::string& dir, const std::vector<std::string>& extra_args,
                          const std::string& log_name = "agent.log");

// GET with a fresh client (5 s timeout).
Result<HttpClientResponse> HttpGet(const std::string& url);

// ---- remote_write and remote_read as a client ----

int64_t UnixNowMs();
// The headers of a remote_write 1.0 request.
std::map<std::string, std::string> RemoteWriteHeaders();
// POSTs `series` as one remote_write request; an error unless the answer is 204.
Status PostRemoteWrite(const std::string& url, const std::vector<TimeSeries>& series);
// The samples of the one series named `name` with label dc=`dc` in [from_ms, to_ms], by
// remote_read (SAMPLES); empty when there is none or the read fails.
std::vector<Sample> RemoteReadSamples(const std::string& url, const std::string& name,
                                      const std::string& dc, int64_t from_ms, int64_t to_ms);

// ---- Prometheus text exposition ----

// One sample of a text exposition.
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Canonical key of a sample: name{a="x",b="y"} with labels sorted, or just name.
std::string SeriesKey(const std::string& name, const std::map<std::string, std::string>& labels);

// Parses the text format (comments skipped, escapes decoded) into key -> value.
using MetricsMap = std::map<std::string, double>;
Result<MetricsMap> ParseMetricsText(const std::string& text);
// Splits a key made by SeriesKey back into name and labels.
Result<MetricSample> ParseSeriesKey(const std::string& key);

// Every sample named `name` whose labels include all of `subset`.
std::vector<MetricSample> FindSamples(const MetricsMap& metrics, const std::string& name,
                                      const std::map<std::string, std::string>& subset = {});
// The one such sample's value; nullopt when there is none or more than one.
std::optional<double> FindSample(const MetricsMap& metrics, const std::string& name,
                                 const std::map<std::string, std::string>& subset = {});

// GET url and parse it as text exposition.
Result<MetricsMap> ScrapeMetrics(const std::string& url);

// ---- promtool ----

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};
PromtoolResult PromtoolCheckMetrics(const std::string& text, const std::string& work_dir);

// ---- JSON (the Prometheus HTTP API, the aggregator's answers), read by nlohmann::json ----

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  // Member by key; a null value when absent or not an object.
  const JsonValue& operator[](const std::string& key) const;
};
Result<JsonValue> ParseJson(const std::string& text);

// ---- Prometheus ----

struct ScrapeJob {
  std::string name;
  std::string target;  // host:port
  bool honor_labels = false;
};

struct QuerySample {
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A real Prometheus (scrape and evaluation interval 1 s) with its TSDB in a temporary folder.
class PrometheusServer {
 public:
  explicit PrometheusServer(std::string dir) : dir_(std::move(dir)) {}

  // Writes prometheus.yml, starts Prometheus on a free port (retrying on a port clash) and
  // waits for /-/ready.
  Status Start(const std::vector<ScrapeJob>& jobs);
  // SIGTERM, then wait for the exit.
  void Stop();

  const std::string& address() const { return address_; }
  Process* process() const { return process_.get(); }

  // Instant query at "now" via /api/v1/query; a vector or scalar result.
  Result<std::vector<QuerySample>> Query(const std::string& promql);
  // Polls Query until it returns exactly one sample and that sample's value satisfies `accept`,
  // or `timeout` passes. Returns the last single value seen (accepted or not; nullopt when no
  // poll returned exactly one sample); *accepted tells which, *last_error why the last poll
  // failed.
  std::optional<double> QueryUntil(const std::string& promql,
                                   const std::function<bool(double)>& accept, milliseconds timeout,
                                   bool* accepted, std::string* last_error = nullptr);

 private:
  std::string dir_;
  std::string address_;
  std::unique_ptr<Process> process_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
int PickFreePort();

// Percent-encodes for a URL query parameter.
std::string UrlEncode(const std::string& s);

// True when a and b are equal within a relative tolerance (and both finite).
bool NearlyEqual(double a, double b, double rel = 1e-9);

}  // namespace suanli::it
