// The command line of both binaries: --version, --help, --config.check on good and bad files,
// unknown flags. Every bad file must be reported with its path, the line and the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"

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
  aggregator.help_must_mention = {"config.file",  "config.check", "web.listen-address",
                                  "storage.path", "log.level",    "log.format",
                                  "version"};
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

}  // namespace
}  // namespace suanli::it
