#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/remote_codec.h"

extern char** environ;

namespace suanli::it {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::atomic<int> g_counter{0};

// Children still running, so that a test binary that dies abnormally (an uncaught exception,
// abort, a crash, SIGTERM/SIGINT from a person) takes its daemons with it instead of leaving
// them bound to ports. Lock-free so that the signal handler may read it.
constexpr int kMaxChildren = 256;
std::atomic<pid_t> g_children[kMaxChildren];

void KillAllChildren() {
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0) kill(pid, SIGKILL);
  }
}

void OnFatalSignal(int sig) {
  KillAllChildren();
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallReaperOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    static std::terminate_handler previous = std::set_terminate([] {
      KillAllChildren();
      if (previous != nullptr) previous();
      std::abort();
    });
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTERM, SIGINT, SIGHUP}) {
      struct sigaction sa {};
      sa.sa_handler = OnFatalSignal;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);
    }
  });
}

void RegisterChild(pid_t pid) {
  InstallReaperOnce();
  for (auto& slot : g_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
}

void UnregisterChild(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

// posix_spawn with stdin from stdin_path and stdout/stderr to out_path/err_path (the same path
// means one shared file). The child gets default dispositions for the signals the daemons use
// and an empty signal mask, and no descriptor of ours beyond 0-2.
Result<pid_t> Spawn(const std::string& binary, const std::vector<std::string>& args,
                    const std::string& stdin_path, const std::string& out_path,
                    const std::string& err_path) {
  std::vector<std::string> storage;
  storage.push_back(binary);
  for (const auto& a : args) storage.push_back(a);
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err_path == out_path) {
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Internal("posix_spawn " + binary + ": " + std::strerror(rc));
  RegisterChild(pid);
  return pid;
}

ExitStatus FromWaitStatus(int st) {
  ExitStatus e;
  if (WIFEXITED(st)) {
    e.exited = true;
    e.code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    e.signal = WTERMSIG(st);
  }
  return e;
}

// Sanitizers (ASan, LSan, UBSan, TSan) end every report with "SUMMARY: <Name>Sanitizer: ".
// A child's report fails the running test here: its exit status is often never looked at
// (daemons are SIGKILLed when a test ends) and its log goes with the test's temporary folder.
void FailOnSanitizerReport(const std::string& who, const std::string& output) {
  for (size_t at = output.find("SUMMARY: "); at != std::string::npos;
       at = output.find("SUMMARY: ", at + 1)) {
    size_t word_end = output.find_first_of(": \n", at + 9);
    if (word_end == std::string::npos || output[word_end] != ':') continue;
    std::string tool = output.substr(at + 9, word_end - (at + 9));
    if (!tool.ends_with("Sanitizer")) continue;
    size_t first = std::min(output.find("Sanitizer"), output.find("runtime error:"));
    size_t from = output.rfind('\n', first);
    from = from == std::string::npos ? 0 : from + 1;
    ADD_FAILURE() << who << " printed a sanitizer report (" << tool << "):\n"
                  << output.substr(from, 20000);
    return;
  }
}

}  // namespace

std::string BinDir() { return SUANLI_BIN_DIR; }
std::string FixturesDir() {
  const char* env = std::getenv("SUANLI_TEST_FIXTURES_DIR");
  return env != nullptr && *env != '\0' ? env : SUANLI_TEST_FIXTURES_DIR;
}
std::string AgentBinary() { return BinDir() + "/suanli-agent"; }
std::string AggregatorBinary() { return BinDir() + "/suanli-aggregator"; }

// ---------------------------------------------------------------- TempDir, files, polling

TempDir::TempDir(const std::string& prefix) {
  std::string base = testing::TempDir();
  if (base.empty() || base.back() != '/') base += '/';
  std::string tmpl = base + prefix + "-" + std::to_string(getpid()) + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << Errno("mkdtemp " + tmpl);
    path_ = tmpl;
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  const char* keep = std::getenv("SUANLI_IT_KEEP_TMP");
  if (keep != nullptr && std::string(keep) == "1") return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError(Errno("open " + path));
  f << text;
  f.close();
  if (!f) return IoError("write " + path + " failed");
  return Status::Ok();
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& condition, milliseconds timeout, milliseconds interval) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(interval);
  }
}

std::string ExitStatus::ToString() const {
  if (exited) return "exited with code " + std::to_string(code);
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  return "unknown exit";
}

// ---------------------------------------------------------------- Process

Result<std::unique_ptr<Process>> Process::Start(const std::string& binary,
                                                const std::vector<std::string>& args,
                                                const std::string& log_path,
                                                const std::string& stdin_path) {
  if (access(binary.c_str(), X_OK) != 0) return NotFound(Errno(binary));
  ASSIGN_OR_RETURN(pid_t pid, Spawn(binary, args, stdin_path, log_path, log_path));
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() {
  if (!exit_.has_value()) {
    kill(pid_, SIGKILL);
    Reap(true);
  }
}

bool Process::Reap(bool block) {
  if (exit_.has_value()) return true;
  int st = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &st, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    UnregisterChild(pid_);
    exit_ = FromWaitStatus(st);
    FailOnSanitizerReport(log_path_, Log());
    return true;
  }
  return false;
}

bool Process::Running() { return !Reap(false); }

void Process::Signal(int sig) {
  if (!exit_.has_value()) kill(pid_, sig);
}

std::optional<ExitStatus> Process::Wait(milliseconds timeout) {
  WaitFor([this] { return Reap(false); }, timeout, milliseconds(10));
  return exit_;
}

std::string Process::LogTail(size_t max_bytes) const {
  std::string log = Log();
  if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
  return log;
}

std::optional<std::string> Process::WaitForLog(const std::string& pattern, milliseconds timeout,
                                               size_t from_offset) {
  const std::regex re(pattern);
  std::optional<std::string> found;
  auto check = [&] {
    std::string log = Log();
    if (log.size() <= from_offset) return false;
    std::smatch m;
    std::string tail = log.substr(from_offset);
    if (!std::regex_search(tail, m, re)) return false;
    found = m.size() > 1 ? m[1].str() : m[0].str();
    return true;
  };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (check()) return found;
    if (!Running()) return check() ? found : std::nullopt;  // exited without the line
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

Result<RunResult> RunCommand(const std::string& binary, const std::vector<std::string>& args,
                             const std::string& work_dir, milliseconds timeout,
                             const std::string& stdin_text) {
  std::string base = work_dir + "/run-" + std::to_string(g_counter++);
  std::string in = "/dev/null";
  if (!stdin_text.empty()) {
    in = base + ".in";
    RETURN_IF_ERROR(WriteFile(in, stdin_text));
  }
  ASSIGN_OR_RETURN(pid_t pid, Spawn(binary, args, in, base + ".out", base + ".err"));
  std::optional<ExitStatus> exit;
  WaitFor(
      [&] {
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
          UnregisterChild(pid);
          exit = FromWaitStatus(st);
        }
        return exit.has_value();
      },
      timeout, milliseconds(10));
  if (!exit.has_value()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    UnregisterChild(pid);
    return DeadlineExceeded(binary + " did not finish in time");
  }
  RunResult r;
  r.status = *exit;
  r.out = ReadFileOrEmpty(base + ".out");
  r.err = ReadFileOrEmpty(base + ".err");
  FailOnSanitizerReport(binary, r.err);
  return r;
}

// ---------------------------------------------------------------- daemons

namespace {

bool HasFlag(const std::vector<std::string>& args, const std::string& flag) {
  for (const auto& a : args) {
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

Result<Daemon> StartDaemon(const std::string& binary, const std::string& dir,
                           std::vector<std::string> args, const std::string& log_name) {
  if (!HasFlag(args, "--web.listen-address")) {
    args.insert(args.begin(), "--web.listen-address=127.0.0.1:0");
  }
  Daemon d;
  ASSIGN_OR_RETURN(d.process, Process::Start(binary, args, dir + "/" + log_name));
  // Generous: opening a store replays its head log first, which under a sanitizer can take
  // tens of seconds (a restored snapshot's log rewrites closed windows).
  auto address = d.process->WaitForLog(R"(listening on http://([0-9.]+:[0-9]+))", seconds(180));
  if (!address.has_value()) {
    std::string why = d.process->Running()
                          ? "no \"listening on\" line within 180 s"
                          : "exited (" + d.process->Wait(milliseconds(0))->ToString() + ")";
    return Unavailable(binary + " " + why + "; log:\n" + d.process->LogTail());
  }
  d.address = *address;
  return d;
}

}  // namespace

Result<Daemon> StartAggregator(const std::string& dir, const std::vector<std::string>& extra_args,
                               const std::string& log_name) {
  std::vector<std::string> args = extra_args;
  if (!HasFlag(args, "--storage.path")) args.push_back("--storage.path=" + dir + "/data");
  return StartDaemon(AggregatorBinary(), dir, std::move(args), log_name);
}

Result<Daemon> StartAgent(const std::string& dir, const std::vector<std::string>& extra_args,
                          const std::string& log_name) {
  return StartDaemon(AgentBinary(), dir, extra_args, log_name);
}

Result<HttpClientResponse> HttpGet(const std::string& url) {
  HttpClient::Options o;
  o.timeout = seconds(5);
  o.connect_timeout = seconds(2);
  HttpClient client(o);
  return client.Get(url);
}

// ---------------------------------------------------------------- remote_write, remote_read

int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::map<std::string, std::string> RemoteWriteHeaders() {
  return {{"Content-Type", remote::kWriteContentType},
          {"Content-Encoding", remote::kContentEncoding},
          {remote::kWriteVersionHeader, remote::kWriteVersion}};
}

Status PostRemoteWrite(const std::string& url, const std::vector<TimeSeries>& series) {
  remote::WriteRequest req;
  req.series = series;
  HttpClient client;
  ASSIGN_OR_RETURN(HttpClientResponse r,
                   client.Post(url, remote::EncodeWriteRequest(req), RemoteWriteHeaders()));
  if (r.status != 204) return Internal("HTTP " + std::to_string(r.status) + ": " + r.body);
  return Status::Ok();
}

std::vector<Sample> RemoteReadSamples(const std::string& url, const std::string& name,
                                      const std::string& dc, int64_t from_ms, int64_t to_ms) {
  remote::ReadRequest req;
  remote::ReadQuery q;
  q.start_ms = from_ms;
  q.end_ms = to_ms;
  q.matchers = {{remote::LabelMatcher::Type::kEqual, "__name__", name},
                {remote::LabelMatcher::Type::kEqual, "dc", dc}};
  req.queries.push_back(q);
  HttpClient client;
  auto r = client.Post(url, remote::EncodeReadRequest(req),
                       {{"Content-Type", "application/x-protobuf"},
                        {"Content-Encoding", "snappy"},
                        {remote::kReadVersionHeader, remote::kReadVersion}});
  if (!r.ok() || r->status != 200) return {};
  auto decoded = remote::DecodeReadResponse(r->body, 64 << 20);
  if (!decoded.ok() || decoded->empty() || (*decoded)[0].empty()) return {};
  return (*decoded)[0][0].samples;
}

// ---------------------------------------------------------------- text exposition

namespace {

void SkipSpaces(std::string_view s, size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\t')) ++*i;
}

// Parses `name{labels}` at s[*i], leaving *i after it.
Status ParseSeriesPrefix(std::string_view s, size_t* i, MetricSample* out) {
  size_t start = *i;
  while (*i < s.size() && s[*i] != '{' && s[*i] != ' ' && s[*i] != '\t') ++*i;
  out->name = std::string(s.substr(start, *i - start));
  if (out->name.empty()) return InvalidArgument("missing metric name");
  out->labels.clear();
  if (*i >= s.size() || s[*i] != '{') return Status::Ok();
  ++*i;
  for (;;) {
    SkipSpaces(s, i);
    if (*i < s.size() && s[*i] == ',') {
      ++*i;
      SkipSpaces(s, i);
    }
    if (*i >= s.size()) return InvalidArgument("unterminated label set");
    if (s[*i] == '}') {
      ++*i;
      return Status::Ok();
    }
    size_t ns = *i;
    while (*i < s.size() && s[*i] != '=' && s[*i] != ' ') ++*i;
    std::string name(s.substr(ns, *i - ns));
    SkipSpaces(s, i);
    if (*i >= s.size() || s[*i] != '=') return InvalidArgument("expected '=' after " + name);
    ++*i;
    SkipSpaces(s, i);
    if (*i >= s.size() || s[*i] != '"') return InvalidArgument("expected '\"' for " + name);
    ++*i;
    std::string value;
    for (;;) {
      if (*i >= s.size()) return InvalidArgument("unterminated value of " + name);
      char c = s[(*i)++];
      if (c == '"') break;
      if (c == '\\' && *i < s.size()) {
        char e = s[(*i)++];
        value.push_back(e == 'n' ? '\n' : e);
      } else {
        value.push_back(c);
      }
    }
    if (out->labels.count(name) != 0) return InvalidArgument("duplicate label " + name);
    out->labels[name] = value;
  }
}

Result<double> ParseValue(std::string_view token) {
  std::string t(token);
  if (t == "+Inf" || t == "Inf") return HUGE_VAL;
  if (t == "-Inf") return -HUGE_VAL;
  if (t == "NaN") return std::nan("");
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size()) return InvalidArgument("bad value \"" + t + "\"");
  return v;
}

}  // namespace

std::string SeriesKey(const std::string& name, const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return name;
  std::string out = name + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += "\"";
  }
  return out + "}";
}

Result<MetricsMap> ParseMetricsText(const std::string& text) {
  MetricsMap out;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view s(line);
    size_t i = 0;
    SkipSpaces(s, &i);
    if (i >= s.size() || s[i] == '#') continue;
    MetricSample m;
    Status st = ParseSeriesPrefix(s, &i, &m);
    if (!st.ok()) return st.WithContext("line " + std::to_string(line_no));
    SkipSpaces(s, &i);
    size_t vs = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    auto v = ParseValue(s.substr(vs, i - vs));
    if (!v.ok()) return v.status().WithContext("line " + std::to_string(line_no));
    std::string key = SeriesKey(m.name, m.labels);
    if (out.count(key) != 0) {
      return InvalidArgument("line " + std::to_string(line_no) + ": duplicate series " + key);
    }
    out[key] = *v;
  }
  return out;
}

Result<MetricSample> ParseSeriesKey(const std::string& key) {
  MetricSample m;
  size_t i = 0;
  RETURN_IF_ERROR(ParseSeriesPrefix(key, &i, &m));
  if (i != key.size()) return InvalidArgument("trailing text in series key " + key);
  return m;
}

std::vector<MetricSample> FindSamples(const MetricsMap& metrics, const std::string& name,
                                      const std::map<std::string, std::string>& subset) {
  std::vector<MetricSample> out;
  // Keys start with the name, followed by '{' or nothing: jump to that range.
  for (auto it = metrics.lower_bound(name); it != metrics.end(); ++it) {
    if (it->first.compare(0, name.size(), name) != 0) break;
    if (it->first.size() != name.size() && it->first[name.size()] != '{') continue;
    auto m = ParseSeriesKey(it->first);
    if (!m.ok()) continue;
    bool match = true;
    for (const auto& [k, v] : subset) {
      auto l = m->labels.find(k);
      if (l == m->labels.end() ? !v.empty() : l->second != v) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    m->value = it->second;
    out.push_back(std::move(m).value());
  }
  return out;
}

std::optional<double> FindSample(const MetricsMap& metrics, const std::string& name,
                                 const std::map<std::string, std::string>& subset) {
  auto all = FindSamples(metrics, name, subset);
  if (all.size() != 1) return std::nullopt;
  return all[0].value;
}

Result<MetricsMap> ScrapeMetrics(const std::string& url) {
  ASSIGN_OR_RETURN(HttpClientResponse r, HttpGet(url));
  if (r.status != 200) {
    return Unavailable("GET " + url + ": status " + std::to_string(r.status) + ": " + r.body);
  }
  return ParseMetricsText(r.body);
}

// ---------------------------------------------------------------- promtool

PromtoolResult PromtoolCheckMetrics(const std::string& text, const std::string& work_dir) {
  PromtoolResult out;
  // An empty stdin_text would mean /dev/null; promtool then checks nothing, as for "".
  auto r = RunCommand(kPromtoolBinary, {"check", "metrics"}, work_dir, seconds(60), text);
  if (!r.ok()) {
    out.output = r.status().ToString();
    return out;
  }
  out.exit_code = r->status.exited ? r->status.code : -1;
  out.output = r->out + r->err;
  return out;
}

// ---------------------------------------------------------------- JSON

namespace {

const JsonValue& NullJson() {
  static const JsonValue* const kNull = new JsonValue();
  return *kNull;
}

// The tests' plain JsonValue from nlohmann::json's document (documents the tests trust: the
// recursion follows their nesting).
JsonValue FromLibrary(const nlohmann::json& j) {
  JsonValue v;
  switch (j.type()) {
    case nlohmann::json::value_t::boolean:
      v.type = JsonValue::Type::kBool;
      v.boolean = j.get<bool>();
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      v.type = JsonValue::Type::kNumber;
      v.number = j.get<double>();
      break;
    case nlohmann::json::value_t::string:
      v.type = JsonValue::Type::kString;
      v.string = j.get<std::string>();
      break;
    case nlohmann::json::value_t::array:
      v.type = JsonValue::Type::kArray;
      for (const nlohmann::json& item : j) v.array.push_back(FromLibrary(item));
      break;
    case nlohmann::json::value_t::object:
      v.type = JsonValue::Type::kObject;
      for (const auto& [key, item] : j.items()) v.object[key] = FromLibrary(item);
      break;
    default:  // null, discarded, binary
      break;
  }
  return v;
}

}  // namespace

const JsonValue& JsonValue::operator[](const std::string& key) const {
  if (type != Type::kObject) return NullJson();
  auto it = object.find(key);
  return it == object.end() ? NullJson() : it->second;
}

Result<JsonValue> ParseJson(const std::string& text) {
  try {
    return FromLibrary(nlohmann::json::parse(text));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("JSON: ") + e.what());
  }
}

// ---------------------------------------------------------------- Prometheus

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    socklen_t len = sizeof sa;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) port = ntohs(sa.sin_port);
  }
  close(fd);
  return port;
}

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool NearlyEqual(double a, double b, double rel) {
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  if (a == b) return true;
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
}

Status PrometheusServer::Start(const std::vector<ScrapeJob>& jobs) {
  std::string yml =
      "global:\n"
      "  scrape_interval: 1s\n"
      "  scrape_timeout: 1s\n"
      "  evaluation_interval: 1s\n"
      "scrape_configs:\n";
  for (const auto& j : jobs) {
    yml += "  - job_name: " + j.name + "\n";
    yml += std::string("    honor_labels: ") + (j.honor_labels ? "true" : "false") + "\n";
    yml += "    static_configs:\n";
    yml += "      - targets: ['" + j.target + "']\n";
  }
  std::string config = dir_ + "/prometheus.yml";
  RETURN_IF_ERROR(WriteFile(config, yml));

  std::string last_log;
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = PickFreePort();
    if (port == 0) return Internal(Errno("cannot pick a free port"));
    std::string address = "127.0.0.1:" + std::to_string(port);
    std::string tsdb = dir_ + "/tsdb-" + std::to_string(attempt);
    std::string log = dir_ + "/prometheus-" + std::to_string(attempt) + ".log";
    ASSIGN_OR_RETURN(process_,
                     Process::Start(kPrometheusBinary,
                                    {"--config.file=" + config, "--storage.tsdb.path=" + tsdb,
                                     "--web.listen-address=" + address, "--log.level=info"},
                                    log));
    bool ready = WaitFor(
        [&] {
          if (!process_->Running()) return true;
          auto r = HttpGet("http://" + address + "/-/ready");
          return r.ok() && r->status == 200;
        },
        seconds(60), milliseconds(100));
    if (ready && process_->Running()) {
      address_ = address;
      return Status::Ok();
    }
    last_log = process_->LogTail();
    process_.reset();  // kills it if it is still (not ready) running
    if (last_log.find("address already in use") == std::string::npos) break;
  }
  return Unavailable("Prometheus did not become ready; log:\n" + last_log);
}

void PrometheusServer::Stop() {
  if (!process_) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(seconds(30)).has_value()) process_->Signal(SIGKILL);
  process_.reset();
}

Result<std::vector<QuerySample>> PrometheusServer::Query(const std::string& promql) {
  std::string url = "http://" + address_ + "/api/v1/query?query=" + UrlEncode(promql);
  ASSIGN_OR_RETURN(HttpClientResponse r, HttpGet(url));
  if (r.status != 200) {
    return Unavailable("query " + promql + ": status " + std::to_string(r.status) + ": " + r.body);
  }
  ASSIGN_OR_RETURN(JsonValue doc, ParseJson(r.body));
  if (doc["status"].string != "success") return Unavailable("query " + promql + ": " + r.body);
  const JsonValue& data = doc["data"];
  auto sample_value = [](const JsonValue& pair) -> Result<double> {
    if (pair.type != JsonValue::Type::kArray || pair.array.size() != 2 ||
        pair.array[1].type != JsonValue::Type::kString) {
      return InvalidArgument("malformed sample value");
    }
    return ParseValue(pair.array[1].string);
  };
  std::vector<QuerySample> out;
  const std::string& type = data["resultType"].string;
  if (type == "scalar") {
    ASSIGN_OR_RETURN(double v, sample_value(data["result"]));
    out.push_back({{}, v});
  } else if (type == "vector") {
    for (const JsonValue& item : data["result"].array) {
      QuerySample s;
      for (const auto& [k, v] : item["metric"].object) s.labels[k] = v.string;
      ASSIGN_OR_RETURN(s.value, sample_value(item["value"]));
      out.push_back(std::move(s));
    }
  } else {
    return InvalidArgument("query " + promql + ": unexpected result type \"" + type + "\"");
  }
  return out;
}

std::optional<double> PrometheusServer::QueryUntil(const std::string& promql,
                                                   const std::function<bool(double)>& accept,
                                                   milliseconds timeout, bool* accepted,
                                                   std::string* last_error) {
  std::optional<double> last;
  *accepted = WaitFor(
      [&] {
        auto r = Query(promql);
        if (!r.ok()) {
          if (last_error != nullptr) *last_error = r.status().ToString();
          return false;
        }
        if (r->size() != 1) {
          if (last_error != nullptr) {
            *last_error = std::to_string(r->size()) + " samples returned, want exactly 1";
          }
          return false;
        }
        last = (*r)[0].value;
        return accept(*last);
      },
      timeout, milliseconds(200));
  return last;
}

}  // namespace suanli::it
