#include "exporters/remote_write/forward_config.h"

#include <set>

#include "core/labels.h"

namespace suanli::exporters {

const char* ForwardSelectName(ForwardSelect s) {
  switch (s) {
    case ForwardSelect::kCapacity:
      return "capacity";
    case ForwardSelect::kRollups:
      return "rollups";
    case ForwardSelect::kRaw:
      return "raw";
  }
  return "?";
}

namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : t_(text) {}

  Result<std::vector<storage::MatcherSpec>> Parse() {
    std::vector<storage::MatcherSpec> out;
    Skip();
    if (p_ < t_.size() && (IsNameStart(t_[p_]) || t_[p_] == ':')) {
      std::string name = Ident(/*metric=*/true);
      out.push_back({storage::MatcherSpec::kEqual, "__name__", name});
      Skip();
    }
    if (p_ < t_.size() && t_[p_] == '{') {
      ++p_;
      Skip();
      while (p_ < t_.size() && t_[p_] != '}') {
        if (!IsNameStart(t_[p_])) return Fail("expected a label name");
        storage::MatcherSpec m;
        m.name = Ident(/*metric=*/false);
        Skip();
        if (Eat("=~")) {
          m.type = storage::MatcherSpec::kRegex;
        } else if (Eat("!~")) {
          m.type = storage::MatcherSpec::kNotRegex;
        } else if (Eat("!=")) {
          m.type = storage::MatcherSpec::kNotEqual;
        } else if (Eat("=")) {
          m.type = storage::MatcherSpec::kEqual;
        } else {
          return Fail("expected =, !=, =~ or !~ after " + m.name);
        }
        Skip();
        ASSIGN_OR_RETURN(m.value, Quoted());
        out.push_back(std::move(m));
        Skip();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          Skip();
        } else if (p_ < t_.size() && t_[p_] != '}') {
          return Fail("expected , or }");
        }
      }
      if (p_ >= t_.size()) return Fail("missing }");
      ++p_;
      Skip();
    }
    if (p_ != t_.size()) return Fail("unexpected text");
    if (out.empty()) return InvalidArgument("empty series selector");
    ASSIGN_OR_RETURN(std::vector<storage::LabelMatcher> compiled, storage::CompileMatchers(out));
    (void)compiled;
    return out;
  }

 private:
  void Skip() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t')) ++p_;
  }
  bool Eat(std::string_view s) {
    if (t_.substr(p_, s.size()) != s) return false;
    p_ += s.size();
    return true;
  }
  std::string Ident(bool metric) {
    size_t start = p_;
    while (p_ < t_.size() && (IsNameChar(t_[p_]) || (metric && t_[p_] == ':'))) ++p_;
    return std::string(t_.substr(start, p_ - start));
  }
  Result<std::string> Quoted() {
    if (p_ >= t_.size() || (t_[p_] != '"' && t_[p_] != '\'' && t_[p_] != '`')) {
      return Fail("expected a quoted value");
    }
    char q = t_[p_++];
    std::string v;
    while (p_ < t_.size() && t_[p_] != q) {
      char c = t_[p_++];
      if (c == '\\' && q != '`' && p_ < t_.size()) {
        char e = t_[p_++];
        switch (e) {
          case 'n':
            v += '\n';
            break;
          case 't':
            v += '\t';
            break;
          default:
            v += e;  // \\ \" \' and regex escapes such as \. pass their character on
            if (e != '\\' && e != '"' && e != '\'') v.insert(v.size() - 1, 1, '\\');
            break;
        }
      } else {
        v += c;
      }
    }
    if (p_ >= t_.size()) return Fail("unterminated string");
    ++p_;
    return v;
  }
  Status Fail(const std::string& what) const {
    return InvalidArgument(what + " at position " + std::to_string(p_ + 1) + " of selector " +
                           std::string(t_));
  }

  std::string_view t_;
  size_t p_ = 0;
};

Status ReadQueue(ConfigMap& target, ForwardQueueConfig* q) {
  ASSIGN_OR_RETURN(ConfigMap m, target.Map("queue_config"));
  RETURN_IF_ERROR(m.Get("shards", &q->shards));
  if (q->shards < 1 || q->shards > 64) return m.Error("shards", "must be between 1 and 64");
  RETURN_IF_ERROR(m.Get("max_samples_per_send", &q->max_samples_per_send));
  if (q->max_samples_per_send < 1 || q->max_samples_per_send > 1'000'000) {
    return m.Error("max_samples_per_send", "must be between 1 and 1000000");
  }
  RETURN_IF_ERROR(m.Get("min_backoff", &q->min_backoff));
  if (q->min_backoff.count() <= 0) return m.Error("min_backoff", "must be positive");
  RETURN_IF_ERROR(m.Get("max_backoff", &q->max_backoff));
  if (q->max_backoff < q->min_backoff) return m.Error("max_backoff", "must be >= min_backoff");
  return m.Finish();
}

}  // namespace

Result<std::vector<storage::MatcherSpec>> ParseSeriesSelector(std::string_view text) {
  return SelectorParser(text).Parse();
}

Result<std::vector<ForwardTarget>> ParseForwardTargets(ConfigMap& root) {
  ASSIGN_OR_RETURN(std::vector<ConfigMap> list, root.List("forward"));
  std::vector<ForwardTarget> out;
  std::set<std::string> names;
  for (ConfigMap& m : list) {
    ForwardTarget t;
    RETURN_IF_ERROR(m.Get("name", &t.name));
    if (t.name.empty()) return m.Error("name", "is required (it names the target in metrics)");
    if (!names.insert(t.name).second) return m.Error("name", "is used by another target");
    for (char c : t.name) {
      if (!IsNameChar(c) && c != '-' && c != '.') {
        return m.Error("name", "may hold only letters, digits, '_', '-' and '.'");
      }
    }
    RETURN_IF_ERROR(m.Get("url", &t.url));
    if (t.url.rfind("http://", 0) != 0 && t.url.rfind("https://", 0) != 0) {
      return m.Error("url", "must be an http:// or https:// URL");
    }
    std::string select = "capacity";
    RETURN_IF_ERROR(m.Get("select", &select));
    if (select == "capacity") {
      t.select = ForwardSelect::kCapacity;
    } else if (select == "rollups") {
      t.select = ForwardSelect::kRollups;
    } else if (select == "raw") {
      t.select = ForwardSelect::kRaw;
    } else {
      return m.Error("select", "must be capacity, rollups or raw");
    }
    if (m.Has("resolution")) {
      if (t.select != ForwardSelect::kRollups) {
        return m.Error("resolution", "applies only to select: rollups");
      }
      std::string res;
      RETURN_IF_ERROR(m.Get("resolution", &res));
      if (res == "1m") {
        t.resolution = rollup::Resolution::k1m;
      } else if (res == "5m") {
        t.resolution = rollup::Resolution::k5m;
      } else if (res == "1h") {
        t.resolution = rollup::Resolution::k1h;
      } else {
        return m.Error("resolution", "must be 1m, 5m or 1h");
      }
    }
    if (m.Has("match") && t.select == ForwardSelect::kCapacity) {
      return m.Error("match",
                     "applies to raw and rollups (capacity sends suanli_dc_* and suanli_link_*)");
    }
    RETURN_IF_ERROR(m.Get("match", &t.match));
    for (const std::string& sel : t.match) {
      auto parsed = ParseSeriesSelector(sel);
      if (!parsed.ok()) return m.Error("match", parsed.status().message());
      t.matchers.push_back(std::move(parsed).value());
    }
    RETURN_IF_ERROR(m.Get("headers", &t.headers));
    for (const auto& [k, v] : t.headers) {
      if (k.empty() || k.find_first_of(" :\r\n") != std::string::npos ||
          v.find_first_of("\r\n") != std::string::npos) {
        return m.Error("headers", "invalid header " + k);
      }
    }
    RETURN_IF_ERROR(m.Get("external_labels", &t.external_labels));
    for (const auto& [k, v] : t.external_labels) {
      if (!IsValidLabelName(k) || k == "__name__") {
        return m.Error("external_labels", "invalid label name " + k);
      }
      if (v.empty()) return m.Error("external_labels", "empty value for " + k);
    }
    RETURN_IF_ERROR(m.Get("bearer_token_file", &t.bearer_token_file));
    ASSIGN_OR_RETURN(ConfigMap basic, m.Map("basic_auth"));
    RETURN_IF_ERROR(basic.Get("username", &t.basic_auth_username));
    RETURN_IF_ERROR(basic.Get("password", &t.basic_auth_password));
    RETURN_IF_ERROR(basic.Get("password_file", &t.basic_auth_password_file));
    if (!t.basic_auth_password.empty() && !t.basic_auth_password_file.empty()) {
      return basic.Error("password_file", "give password or password_file, not both");
    }
    if (t.basic_auth_username.empty() &&
        (!t.basic_auth_password.empty() || !t.basic_auth_password_file.empty())) {
      return basic.Error("username", "is required with a password");
    }
    RETURN_IF_ERROR(basic.Finish());
    if (!t.bearer_token_file.empty() && !t.basic_auth_username.empty()) {
      return m.Error("bearer_token_file", "give bearer_token_file or basic_auth, not both");
    }
    ASSIGN_OR_RETURN(ConfigMap tls, m.Map("tls_config"));
    RETURN_IF_ERROR(tls.Get("ca_file", &t.ca_file));
    RETURN_IF_ERROR(tls.Get("cert_file", &t.cert_file));
    RETURN_IF_ERROR(tls.Get("key_file", &t.key_file));
    RETURN_IF_ERROR(tls.Get("insecure_skip_verify", &t.insecure_skip_verify));
    if (t.cert_file.empty() != t.key_file.empty()) {
      return tls.Error(t.cert_file.empty() ? "cert_file" : "key_file",
                       "cert_file and key_file go together");
    }
    RETURN_IF_ERROR(tls.Finish());
    RETURN_IF_ERROR(m.Get("remote_timeout", &t.remote_timeout));
    if (t.remote_timeout.count() <= 0) return m.Error("remote_timeout", "must be positive");
    RETURN_IF_ERROR(m.Get("max_backlog", &t.max_backlog));
    if (t.max_backlog < std::chrono::minutes(1)) {
      return m.Error("max_backlog", "must be at least 1m");
    }
    if (m.Has("rollup_delay") && t.select != ForwardSelect::kRollups) {
      return m.Error("rollup_delay", "applies only to select: rollups");
    }
    RETURN_IF_ERROR(m.Get("rollup_delay", &t.rollup_delay));
    if (t.rollup_delay.count() < 0) return m.Error("rollup_delay", "must not be negative");
    RETURN_IF_ERROR(ReadQueue(m, &t.queue));
    RETURN_IF_ERROR(m.Finish());
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace suanli::exporters
