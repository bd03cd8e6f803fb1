// A Redfish BMC for tests, made of a mockup tree laid out as DMTF's mockups are
// (<tree>/A/B/index.json is served at /redfish/v1/A/B, the top index.json at /redfish/v1/):
// DMTF's public mockups (tests/fixtures/redfish) or the project's own (tests/fixtures/suanli/
// redfish). Served by suanli's HttpServer on 127.0.0.1 (a free port), plain HTTP, no
// authentication (HttpServer keeps the Authorization header from its handlers). Used by the
// Redfish collector's unit tests and by integration tests whose agents read power from a BMC.
// Thread-safety: the knobs (SetStatus, Replace, ...) may be called from any thread while the
// server answers requests on its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/http_server.h"

namespace suanli::test_support {

// The documents of the mockup tree at `tree_dir`, by the path a BMC serves them at. Adds a test
// failure when the tree has fewer than five documents (a wrong path, most likely).
std::map<std::string, std::string> LoadRedfishTree(const std::string& tree_dir);

// Serves every document of a mockup tree, with knobs to break it: an HTTP status for every
// request, hanging or slow answers, missing or replaced documents.
class RedfishMockupServer {
 public:
  // Serves the tree at `tree_dir`, with `extra` (path -> body) added or replacing its documents.
  // Adds a test failure when the server cannot start (started() is then false).
  explicit RedfishMockupServer(const std::string& tree_dir,
                               std::map<std::string, std::string> extra = {});
  ~RedfishMockupServer();
  RedfishMockupServer(const RedfishMockupServer&) = delete;
  RedfishMockupServer& operator=(const RedfishMockupServer&) = delete;

  bool started() const { return started_; }
  // "http://127.0.0.1:PORT", the base URL an agent's redfish.url takes.
  std::string url() const { return "http://" + server_.address(); }

  // Every request answers `status` with `body` (and a Location header, if given); 0: serve the
  // tree again.
  void SetStatus(int status, std::string body = "", std::string location = "");
  // While true, requests wait (until false again or the server closes).
  void SetHang(bool hang);
  // Each request waits this long before it is answered.
  void SetDelay(std::chrono::milliseconds delay);
  void Replace(const std::string& path, std::string body);
  // The document at `path` answers 404 from now on.
  void Remove(const std::string& path);
  // The paths requested so far, in order.
  std::vector<std::string> paths();

 private:
  HttpResponse Serve(const HttpRequest& request);

  HttpServer server_;
  bool started_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> docs_;
  std::set<std::string> missing_;
  int status_ = 0;
  std::string status_body_;
  std::string location_;
  bool hang_ = false;
  std::chrono::milliseconds delay_{0};
  bool closing_ = false;
  std::vector<std::string> paths_;
};

}  // namespace suanli::test_support
