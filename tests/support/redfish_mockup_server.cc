#include "tests/support/redfish_mockup_server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace suanli::test_support {
namespace {

namespace fs = std::filesystem;

HttpServer::Options ServerOptions() {
  HttpServer::Options o;
  o.listen_address = "127.0.0.1:0";
  o.shutdown_grace_seconds = 1;
  return o;
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::map<std::string, std::string> LoadRedfishTree(const std::string& tree_dir) {
  std::map<std::string, std::string> docs;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tree_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() != "index.json") continue;
    std::string rel = fs::relative(it->path().parent_path(), tree_dir).string();
    docs[rel == "." ? "/redfish/v1/" : "/redfish/v1/" + rel] = Slurp(it->path());
  }
  EXPECT_FALSE(ec) << tree_dir << ": " << ec.message();
  EXPECT_GE(docs.size(), 5u) << tree_dir;
  return docs;
}

RedfishMockupServer::RedfishMockupServer(const std::string& tree_dir,
                                         std::map<std::string, std::string> extra)
    : server_(ServerOptions()), docs_(LoadRedfishTree(tree_dir)) {
  for (auto& [path, body] : extra) docs_[path] = std::move(body);
  auto serve = [this](const HttpRequest& r) { return Serve(r); };
  for (const auto& [path, body] : docs_) server_.Route("GET", path, serve);
  // A client may ask for the service root without its trailing slash.
  server_.Route("GET", "/redfish/v1", serve);
  Status st = server_.Start();
  started_ = st.ok();
  EXPECT_TRUE(started_) << st.message();
}

RedfishMockupServer::~RedfishMockupServer() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  server_.Stop();
}

void RedfishMockupServer::SetStatus(int status, std::string body, std::string location) {
  std::lock_guard lock(mu_);
  status_ = status;
  status_body_ = std::move(body);
  location_ = std::move(location);
}

void RedfishMockupServer::SetHang(bool hang) {
  {
    std::lock_guard lock(mu_);
    hang_ = hang;
  }
  cv_.notify_all();
}

void RedfishMockupServer::SetDelay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  delay_ = delay;
}

void RedfishMockupServer::Replace(const std::string& path, std::string body) {
  std::lock_guard lock(mu_);
  docs_[path] = std::move(body);
}

void RedfishMockupServer::Remove(const std::string& path) {
  std::lock_guard lock(mu_);
  missing_.insert(path);
}

std::vector<std::string> RedfishMockupServer::paths() {
  std::lock_guard lock(mu_);
  return paths_;
}

HttpResponse RedfishMockupServer::Serve(const HttpRequest& r) {
  std::unique_lock lock(mu_);
  paths_.push_back(r.path);
  if (hang_) cv_.wait(lock, [this] { return !hang_ || closing_; });
  if (delay_.count() > 0) cv_.wait_for(lock, delay_, [this] { return closing_; });
  HttpResponse response;
  response.content_type = "application/json";
  if (status_ != 0) {
    response.status = status_;
    response.body = status_body_;
    if (!location_.empty()) response.headers["Location"] = location_;
    return response;
  }
  std::string path = r.path == "/redfish/v1" ? "/redfish/v1/" : r.path;
  if (missing_.count(path) || !docs_.count(path)) {
    response.status = 404;
    return response;
  }
  response.body = docs_[path];
  return response;
}

}  // namespace suanli::test_support
