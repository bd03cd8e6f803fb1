// suanlictl: the operator's tool for Suanli aggregators, in the manner of promtool and amtool.
//   suanlictl capacity [--region R] [--dc D] [--precision P] [--watch]
//   suanlictl snapshot
//   suanlictl forward status
//   suanlictl store analyze --storage.path=DIR
//   suanlictl store verify --storage.path=DIR
// The first three talk to a running aggregator (--aggregator.url, credentials as Prometheus'
// tools take them); the store commands open a store directory read-only.
// Exit codes: 0 success, 1 failure (an error answer, an unreachable aggregator, a damaged or
// unreadable store), 2 bad usage.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "ctl/aggregator_client.h"
#include "ctl/capacity_command.h"
#include "ctl/forward_status.h"
#include "ctl/snapshot_command.h"
#include "ctl/store_analyze.h"
#include "ctl/store_verify.h"

namespace {

using namespace suanli::ctl;

constexpr int kUsageError = 2;

// The options every command that talks to an aggregator takes.
void AddClientOptions(CLI::App& app, ClientOptions& o, double& timeout_seconds) {
  app.add_option("--aggregator.url", o.url, "URL of the aggregator")->capture_default_str();
  app.add_option("--bearer-token-file", o.bearer_token_file,
                 "File holding the bearer token to send (Authorization: Bearer)");
  app.add_option("--basic-auth.username", o.basic_auth_username, "User name for basic auth");
  app.add_option("--basic-auth.password-file", o.basic_auth_password_file,
                 "File holding the basic auth password");
  app.add_option("--tls.ca-file", o.ca_file, "CA certificates to verify the aggregator with (PEM)");
  app.add_option("--tls.cert-file", o.cert_file, "Client certificate (PEM), for mutual TLS");
  app.add_option("--tls.key-file", o.key_file, "Client certificate's key (PEM)");
  app.add_flag("--tls.insecure-skip-verify", o.insecure_skip_verify,
               "Do not verify the aggregator's certificate");
  app.add_option("--timeout", timeout_seconds, "Seconds to wait for an answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

int WithClient(const ClientOptions& options, double timeout_seconds,
               const std::function<int(AggregatorClient&)>& run) {
  ClientOptions o = options;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  auto client = AggregatorClient::Create(o);
  if (!client.ok()) {
    std::cerr << "suanlictl: " << client.status().message() << "\n";
    return kUsageError;
  }
  return run(**client);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "suanlictl: look at and look after Suanli aggregators and their stores.\n"
      "Exit codes: 0 success, 1 failure, 2 bad usage.",
      "suanlictl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("suanlictl ") + SUANLI_VERSION);
  ClientOptions client_options;
  double timeout_seconds = 60;

  CLI::App* capacity = app.add_subcommand(
      "capacity", "The capacity view of a running aggregator (/api/v1/capacity) as a table");
  CapacityOptions capacity_options;
  capacity->add_option("--region", capacity_options.region, "Only this region");
  capacity->add_option("--dc", capacity_options.dc, "Only this data center");
  capacity->add_option("--precision", capacity_options.precision, "Compute precision shown")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp64", "fp32", "fp16", "int8"}));
  capacity->add_flag("--watch", capacity_options.watch,
                     "Redraw every --interval seconds until interrupted");
  capacity
      ->add_option("--interval", capacity_options.interval_seconds,
                   "Seconds between redraws with --watch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  AddClientOptions(*capacity, client_options, timeout_seconds);

  CLI::App* snapshot = app.add_subcommand(
      "snapshot",
      "Snapshot a running aggregator's store (POST /api/v1/admin/snapshot; the aggregator needs "
      "--web.enable-admin-api) and print the snapshot's name: its folder under "
      "<storage.path>/snapshots/");
  AddClientOptions(*snapshot, client_options, timeout_seconds);

  CLI::App* forward = app.add_subcommand("forward", "Forwarding of a running aggregator");
  forward->require_subcommand(1);
  CLI::App* forward_status =
      forward->add_subcommand("status", "The state of each forward: target, from /metrics");
  AddClientOptions(*forward_status, client_options, timeout_seconds);

  CLI::App* store = app.add_subcommand(
      "store", "Work on a store directory, opened read-only (works beside a running aggregator)");
  store->require_subcommand(1);
  AnalyzeOptions analyze_options;
  CLI::App* analyze = store->add_subcommand(
      "analyze",
      "Series and samples by metric and dc, bytes per resolution, highest-cardinality labels");
  analyze->add_option("--storage.path", analyze_options.storage_path, "The store directory")
      ->required();
  analyze->add_option("--limit", analyze_options.limit, "Rows per table")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bool no_progress = false;
  analyze->add_flag("--no-progress", no_progress, "No progress bar, even on a terminal");
  VerifyOptions verify_options;
  CLI::App* verify = store->add_subcommand(
      "verify",
      "Check every SST block checksum, decode every chunk, rollup block and head log record, "
      "compare every chunk's rollups with the stored ones; report what is damaged (exit 1)");
  verify->add_option("--storage.path", verify_options.storage_path, "The store directory")
      ->required();
  verify->add_flag("--no-progress", no_progress, "No progress bar, even on a terminal");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints --help, --version or the error
    return code == 0 ? 0 : kUsageError;
  }

  if (capacity->parsed()) {
    return WithClient(client_options, timeout_seconds, [&](AggregatorClient& c) {
      return RunCapacity(c, capacity_options, std::cout, std::cerr);
    });
  }
  if (snapshot->parsed()) {
    return WithClient(client_options, timeout_seconds,
                      [&](AggregatorClient& c) { return RunSnapshot(c, std::cout, std::cerr); });
  }
  if (forward_status->parsed()) {
    return WithClient(client_options, timeout_seconds, [&](AggregatorClient& c) {
      return RunForwardStatus(c, std::cout, std::cerr);
    });
  }
  if (analyze->parsed()) {
    analyze_options.progress = !no_progress;
    return RunStoreAnalyze(analyze_options, std::cout, std::cerr);
  }
  if (verify->parsed()) {
    verify_options.progress = !no_progress;
    return RunStoreVerify(verify_options, std::cout, std::cerr);
  }
  return kUsageError;
}
