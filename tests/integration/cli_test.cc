// The command line of both binaries: --version, --help, --config.check on good and bad files,
// unknown flags. Every bad file must be reported with its path, the line and the key.
#include <crypt.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/http_client.h"
#include "tests/integration/harness.h"
#include "tests/unit/core/test_certs.h"

namespace suanli::it {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

struct BadFile {
  std::string what;  // test case name
  std::string yaml;  // file contents
  int line;          // line the error must name
  std::string key;   // key the error must name
};

struct BinaryCase {
  std::string name;
  std::string binary;
  std::string program;  // the name it prints
  std::string valid_yaml;
  std::vector<BadFile> bad_files;
  std::vector<std::string> help_must_mention;  // flag names ("--" or "--[no-]" before)
};

// gtest prints the case's name instead of its bytes.
void PrintTo(const BinaryCase& c, std::ostream* os) { *os << c.name; }

std::vector<BinaryCase> Cases() {
  BinaryCase agent;
  agent.name = "agent";
  agent.binary = AgentBinary();
  agent.program = "suanli-agent";
  agent.valid_yaml =
      "labels: {region: gansu, dc: lanzhou-1, instance: cli-node}\n"
      "sample_interval: 1s\n"
      "remote_write:\n"
      "  - url: http://127.0.0.1:9/api/v1/write\n"
      "web:\n"
      "  listen_address: 127.0.0.1:0\n"
      "collectors:\n"
      "  cpu: true\n";
  agent.bad_files = {
      {"unknown_key",
       "labels: {region: gansu, dc: lanzhou-1}\n"
       "sample_interval: 1s\n"
       "sample_intervall: 2s\n",
       3, "sample_intervall"},
      {"bad_duration",
       "labels: {region: gansu, dc: lanzhou-1}\n"
       "sample_interval: 15x\n",
       2, "sample_interval"},
      {"wrong_type",
       "labels: {region: gansu, dc: lanzhou-1}\n"
       "sample_interval: 1s\n"
       "web:\n"
       "  listen_address: [127.0.0.1, 9465]\n",
       4, "listen_address"},
      {"wrong_type_nested_list",
       "labels: {region: gansu, dc: lanzhou-1}\n"
       "remote_write:\n"
       "  - url: http://127.0.0.1:9/api/v1/write\n"
       "    timeout: {seconds: 5}\n",
       4, "timeout"},
  };
  agent.help_must_mention = {"config.file", "config.check",    "web.listen-address", "path.procfs",
                             "path.sysfs",  "sample.interval", "remote-write.url",   "log.level",
                             "log.format",  "version"};

  BinaryCase aggregator;
  aggregator.name = "aggregator";
  aggregator.binary = AggregatorBinary();
  aggregator.program = "suanli-aggregator";
  aggregator.valid_yaml =
      "web:\n"
      "  listen_address: 127.0.0.1:0\n"
      "storage:\n"
      "  path: data\n"
      "limits:\n"
      "  max_body_bytes: 1048576\n"
      "capacity:\n"
      "  stale_after: 5m\n";
  aggregator.bad_files = {
      {"unknown_key",
       "web:\n"
       "  listen_address: 127.0.0.1:0\n"
       "storage:\n"
       "  path: data\n"
       "  compresion: zstd\n",
       5, "compresion"},
      {"bad_duration",
       "capacity:\n"
       "  stale_after: 15x\n",
       2, "stale_after"},
      {"wrong_type",
       "web:\n"
       "  listen_address: 127.0.0.1:0\n"
       "limits:\n"
       "  max_body_bytes: lots\n",
       4, "max_body_bytes"},
  };
  aggregator.help_must_mention = {
      "config.file",          "config.check", "web.listen-address", "storage.path",
      "web.enable-admin-api", "log.level",    "log.format",         "version"};
  return {agent, aggregator};
}

class CliTest : public ::testing::TestWithParam<BinaryCase> {
 protected:
  RunResult Run(const std::vector<std::string>& args) {
    auto r = RunCommand(GetParam().binary, args, tmp_.path(), seconds(15));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunResult{};
  }
  std::string Write(const std::string& name, const std::string& yaml) {
    std::string path = tmp_.Sub(name);
    EXPECT_TRUE(WriteFile(path, yaml).ok());
    return path;
  }
  TempDir tmp_{"suanli-it-cli"};
};

TEST_P(CliTest, VersionExitsZeroAndPrintsTheVersion) {
  RunResult r = Run({"--version"});
  EXPECT_TRUE(r.status.ok()) << r.status.ToString() << "\nstderr: " << r.err;
  EXPECT_THAT(r.out, HasSubstr(GetParam().program));
  EXPECT_THAT(r.out, ContainsRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));
}

TEST_P(CliTest, HelpExitsZeroAndListsTheFlags) {
  RunResult r = Run({"--help"});
  EXPECT_TRUE(r.status.ok()) << r.status.ToString() << "\nstderr: " << r.err;
  for (const auto& flag : GetParam().help_must_mention) EXPECT_THAT(r.out, HasSubstr(flag));
}

TEST_P(CliTest, ConfigCheckAcceptsAValidFile) {
  std::string path = Write("valid.yml", GetParam().valid_yaml);
  RunResult r = Run({"--config.file=" + path, "--config.check"});
  EXPECT_TRUE(r.status.ok()) << r.status.ToString() << "\nstdout: " << r.out
                             << "\nstderr: " << r.err;
}

TEST_P(CliTest, ConfigCheckNamesFileLineAndKeyOfEachError) {
  for (const BadFile& bad : GetParam().bad_files) {
    SCOPED_TRACE(bad.what);
    std::string path = Write(bad.what + ".yml", bad.yaml);
    RunResult r = Run({"--config.file=" + path, "--config.check"});
    EXPECT_TRUE(r.status.exited) << r.status.ToString();
    EXPECT_NE(r.status.code, 0) << "stdout: " << r.out;
    EXPECT_THAT(r.err, HasSubstr(path + ":" + std::to_string(bad.line) + ":"));
    EXPECT_THAT(r.err, HasSubstr(bad.key));
  }
}

TEST_P(CliTest, ConfigErrorsAlsoStopANormalStart) {
  // Without --config.check the same file must keep the daemon from starting at all.
  const BadFile& bad = GetParam().bad_files.front();
  std::string path = Write("start-" + bad.what + ".yml", bad.yaml);
  std::vector<std::string> args = {"--config.file=" + path, "--web.listen-address=127.0.0.1:0"};
  if (GetParam().name == "aggregator") args.push_back("--storage.path=" + tmp_.Sub("data"));
  RunResult r = Run(args);
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.status.code, 0);
}

TEST_P(CliTest, ConfigCheckOnAMissingFileNamesIt) {
  std::string path = tmp_.Sub("does-not-exist.yml");
  RunResult r = Run({"--config.file=" + path, "--config.check"});
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.status.code, 0);
  EXPECT_THAT(r.err, HasSubstr(path));
}

TEST_P(CliTest, UnknownFlagIsNamed) {
  RunResult r = Run({"--no-such-flag=1"});
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.status.code, 0);
  EXPECT_THAT(r.err, HasSubstr("no-such-flag"));

  RunResult r2 = Run({"--web.listen-adress=127.0.0.1:0"});  // a typo of a real flag
  EXPECT_NE(r2.status.code, 0);
  EXPECT_THAT(r2.err, HasSubstr("web.listen-adress"));
}

INSTANTIATE_TEST_SUITE_P(Binaries, CliTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<BinaryCase>& info) {
                           return info.param.name;
                         });

// Whether the process has `library` (a file name, or its start: "libssl.so" for any version)
// mapped.
bool Maps(pid_t pid, const std::string& library) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/" + library) != std::string::npos) return true;
  }
  return false;
}

// Resident memory: the agent links spdlog's compiled part and yaml-cpp statically
// (core/spdlog_lib.cc, core/CMakeLists.txt) and encodes remote_write itself, so it maps none of
// these shared libraries (each cost it hundreds of kB resident).
TEST(AgentSharedLibrariesTest, MapsNeitherSpdlogNorYamlCppNorProtobuf) {
  TempDir tmp("suanli-it-libs");
  auto agent =
      StartAgent(tmp.path(), {"--remote-write.url=http://127.0.0.1:9/api/v1/write"}, "agent.log");
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  auto metrics = HttpGet(agent->Url("/metrics"));
  ASSERT_TRUE(metrics.ok() && metrics->status == 200);
  // What it does map, so that the check reads the right process's maps.
  EXPECT_TRUE(Maps(agent->process->pid(), "libprometheus-cpp-core.so"));
  EXPECT_FALSE(Maps(agent->process->pid(), "libspdlog.so"));
  EXPECT_FALSE(Maps(agent->process->pid(), "libyaml-cpp.so"));
  EXPECT_FALSE(Maps(agent->process->pid(), "libprotobuf.so"));
  // http:// remote_write goes through the agent's own client: libcurl and the 30 libraries it
  // pulls in would add about 8 MB resident (docs/performance.md).
  EXPECT_FALSE(Maps(agent->process->pid(), "libcurl.so"));
}

// The agent loads OpenSSL and libcrypt only when its web configuration needs them
// (agent/lazy_openssl.cc, lazy_libcrypt.cc): plain HTTP never maps them; TLS with basic auth
// works through the lazily loaded libraries, and a wrong password is still refused.
TEST(AgentOpenSslTest, LoadedOnlyForTlsAndBasicAuthWhichThenWork) {
  TempDir tmp("suanli-it-openssl");
  auto plain =
      StartAgent(tmp.path(), {"--remote-write.url=http://127.0.0.1:9/api/v1/write"}, "plain.log");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  auto metrics = HttpGet(plain->Url("/metrics"));
  ASSERT_TRUE(metrics.ok() && metrics->status == 200);
  EXPECT_FALSE(Maps(plain->process->pid(), "libssl.so.3"));
  EXPECT_FALSE(Maps(plain->process->pid(), "libcrypto.so.3"));
  EXPECT_FALSE(Maps(plain->process->pid(), "libcrypt.so.1"));

  testing_pki::TestPki pki;
  std::string error;
  ASSERT_TRUE(pki.Create(tmp.path(), &error)) << error;
  auto data = std::make_unique<crypt_data>();
  char salt[64];
  ASSERT_NE(crypt_gensalt_rn("$2y$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  const char* hash = crypt_r("s3cret", salt, data.get());
  ASSERT_NE(hash, nullptr);
  ASSERT_TRUE(WriteFile(tmp.Sub("web.yml"), "tls_server_config:\n  cert_file: " + pki.server_crt +
                                                "\n  key_file: " + pki.server_key +
                                                "\nbasic_auth_users:\n  prometheus: \"" + hash +
                                                "\"\n")
                  .ok());
  auto process =
      Process::Start(AgentBinary(),
                     {"--web.listen-address=127.0.0.1:0", "--web.config.file=" + tmp.Sub("web.yml"),
                      "--remote-write.url=http://127.0.0.1:9/api/v1/write"},
                     tmp.Sub("tls.log"));
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  auto address = (*process)->WaitForLog(R"(listening on https://([0-9.]+:[0-9]+))", seconds(30));
  ASSERT_TRUE(address.has_value()) << (*process)->LogTail();
  HttpClient::Options o;
  o.timeout = seconds(5);
  o.ca_file = pki.ca_crt;
  o.username = "prometheus";
  o.password = "s3cret";
  auto ok = HttpClient(o).Get("https://" + *address + "/metrics");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_THAT(ok->body, HasSubstr("suanli_agent_sweeps_total"));
  o.password = "wrong";
  auto refused = HttpClient(o).Get("https://" + *address + "/metrics");
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->status, 401);
  EXPECT_TRUE(Maps((*process)->pid(), "libssl.so.3"));
  EXPECT_TRUE(Maps((*process)->pid(), "libcrypt.so.1"));
}

}  // namespace
}  // namespace suanli::it
