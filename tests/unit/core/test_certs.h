// TestPki: a throw-away PKI made with the `openssl` CLI when a test runs (no key is ever
// committed): a CA; a server certificate for localhost/127.0.0.1; client certificates for
// dc A and dc B; an expired dc A client certificate (`openssl ca -startdate/-enddate`, as
// `openssl req`/`x509` in OpenSSL 3.0 cannot backdate); and a dc A client certificate from
// another ("rogue") CA. Used by the unit and the integration tests.
// Thread-safety: Create() runs shell commands; call it from one thread.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>

namespace suanli::testing_pki {

struct TestPki {
  std::string dir;
  std::string ca_crt;
  std::string server_crt, server_key;
  std::string client_a_crt, client_a_key;  // CN/SAN agent.dc-a.test
  std::string client_b_crt, client_b_key;  // CN/SAN agent.dc-b.test
  std::string expired_crt, expired_key;    // CN agent.dc-a.test, valid only in January 2020
  std::string rogue_crt, rogue_key;        // CN agent.dc-a.test, signed by another CA

  // Makes everything under `dir` (which must exist); false with *error (the openssl log).
  bool Create(const std::string& directory, std::string* error) {
    dir = directory;
    ca_crt = dir + "/ca.crt";
    server_crt = dir + "/server.crt";
    server_key = dir + "/server.key";
    client_a_crt = dir + "/client-a.crt";
    client_a_key = dir + "/client-a.key";
    client_b_crt = dir + "/client-b.crt";
    client_b_key = dir + "/client-b.key";
    expired_crt = dir + "/expired.crt";
    expired_key = dir + "/expired.key";
    rogue_crt = dir + "/rogue.crt";
    rogue_key = dir + "/rogue.key";
    {
      std::ofstream cnf(dir + "/ca.cnf");
      cnf << "[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndir = " << dir
          << "\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\n"
             "default_md = sha256\npolicy = policy_any\nunique_subject = no\n"
             "copy_extensions = copy\n[ policy_any ]\ncommonName = supplied\n";
      std::ofstream(dir + "/index.txt").flush();
      std::ofstream(dir + "/serial") << "1000\n";
    }
    const std::string log = dir + "/openssl.log";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    auto req = [&](const std::string& name, const std::string& cn, const std::string& san) {
      return "openssl req -new" + ec + "-keyout '" + dir + "/" + name + ".key' -out '" + dir + "/" +
             name + ".csr' -subj '/CN=" + cn + "' -addext 'subjectAltName=" + san + "'";
    };
    auto sign = [&](const std::string& name, const std::string& ca, const std::string& dates) {
      return "openssl ca -batch -notext -config '" + dir + "/ca.cnf' -cert '" + dir + "/" + ca +
             ".crt' -keyfile '" + dir + "/" + ca + ".key' -in '" + dir + "/" + name +
             ".csr' -out '" + dir + "/" + name + ".crt' " + dates;
    };
    const std::string ca_ext =
        " -addext basicConstraints=critical,CA:TRUE"
        " -addext keyUsage=critical,keyCertSign,cRLSign ";
    const std::string steps[] = {
        "openssl req -x509" + ec + "-days 2 -subj /CN=suanli-test-ca" + ca_ext + "-keyout '" + dir +
            "/ca.key' -out '" + ca_crt + "'",
        "openssl req -x509" + ec + "-days 2 -subj /CN=rogue-ca" + ca_ext + "-keyout '" + dir +
            "/rogue-ca.key' -out '" + dir + "/rogue-ca.crt'",
        req("server", "localhost", "DNS:localhost,IP:127.0.0.1"),
        sign("server", "ca", "-days 2"),
        req("client-a", "agent.dc-a.test", "DNS:agent.dc-a.test"),
        sign("client-a", "ca", "-days 2"),
        req("client-b", "agent.dc-b.test", "DNS:agent.dc-b.test"),
        sign("client-b", "ca", "-days 2"),
        req("expired", "agent.dc-a.test", "DNS:agent.dc-a.test"),
        sign("expired", "ca", "-startdate 20200101000000Z -enddate 20200131000000Z"),
        req("rogue", "agent.dc-a.test", "DNS:agent.dc-a.test"),
        sign("rogue", "rogue-ca", "-days 2"),
    };
    for (const std::string& step : steps) {
      std::string cmd = step + " >>'" + log + "' 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        std::ifstream in(log);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        *error = "failed: " + step + "\n" + text;
        return false;
      }
    }
    return true;
  }
};

}  // namespace suanli::testing_pki
