// A connection lost in the middle of a write: the store reconnects and finds out whether the
// write landed, instead of writing it twice or losing it. The connection goes through a proxy
// on loopback that can hold back the server's replies and then cut the connection, so the
// write is committed and its reply never arrives: the one case a retry must not repeat.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <regex>
#include <string_view>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <durable/postgres/store.hpp>

#include "postgres_support.hpp"
#include "store_contract_support.hpp"

using namespace std::chrono_literals;
using store_contract::completed_type;
using store_contract::completion_bytes;
using store_contract::started_bytes;

namespace {

/// A TCP proxy on 127.0.0.1 in front of the test server. `hold_replies` stops passing what the
/// server sends; `cut` closes every connection through it (and passes replies again).
class cutting_proxy {
 public:
  explicit cutting_proxy(const std::string& server_url) : server_url_(server_url) {
    std::smatch port;
    REQUIRE(std::regex_search(server_url, port, std::regex("port=([0-9]+)")));
    server_port_ = std::stoi(port[1]);
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    pump_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }
  cutting_proxy(const cutting_proxy&) = delete;
  cutting_proxy& operator=(const cutting_proxy&) = delete;
  ~cutting_proxy() {
    pump_.request_stop();
    pump_.join();
    close_all();
    ::close(listener_);
  }

  /// The server's connection string, through the proxy.
  [[nodiscard]] std::string url() const {
    return std::regex_replace(server_url_, std::regex("port=[0-9]+"), "port=" + std::to_string(port_));
  }
  void hold_replies() { held_ = true; }
  /// Holds the server's replies from the moment a client sends a statement containing `marker`.
  void hold_replies_after(std::string marker) {
    std::lock_guard lock(marker_mutex_);
    marker_ = std::move(marker);
  }
  void cut() {
    cut_requested_ = true;
    while (cut_requested_) std::this_thread::sleep_for(1ms);
  }

 private:
  void run(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      if (cut_requested_) {
        close_all();
        held_ = false;
        cut_requested_ = false;
      }
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (const auto& [client, server] : pairs_) {
        fds.push_back({client, POLLIN, 0});
        fds.push_back({server, static_cast<short>(held_ ? 0 : POLLIN), 0});
      }
      if (::poll(fds.data(), fds.size(), 5) <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) accept_one();
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const auto& pair = pairs_[(i - 1) / 2];
        const int from = fds[i].fd;
        const int to = from == pair.first ? pair.second : pair.first;
        char buffer[16384];
        const ssize_t n = ::read(from, buffer, sizeof buffer);
        if (n > 0 && from == pair.first) {
          std::lock_guard lock(marker_mutex_);
          if (!marker_.empty() && std::string_view(buffer, static_cast<std::size_t>(n)).find(marker_) != std::string_view::npos) {
            held_ = true;
            marker_.clear();
          }
        }
        if (n <= 0 || ::send(to, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
          ::shutdown(pair.first, SHUT_RDWR);
          ::shutdown(pair.second, SHUT_RDWR);
        }
      }
    }
  }
  void accept_one() {
    const int client = ::accept(listener_, nullptr, nullptr);
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(server_port_));
    if (::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(client);
      ::close(server);
      return;
    }
    pairs_.emplace_back(client, server);
  }
  void close_all() {
    for (const auto& [client, server] : pairs_) {
      ::close(client);
      ::close(server);
    }
    pairs_.clear();
  }

  std::string server_url_;
  int server_port_ = 0;
  int listener_ = -1;
  int port_ = 0;
  std::vector<std::pair<int, int>> pairs_;  // (client, server), on the pump's thread only
  std::atomic<bool> held_{false};
  std::mutex marker_mutex_;
  std::string marker_;  // under marker_mutex_
  std::atomic<bool> cut_requested_{false};
  std::jthread pump_;
};

/// Waits (bounded) until `sql` on a connection of its own returns a row.
bool eventually(const std::string& sql) {
  durable::postgres::connection db(postgres_support::connection_string());
  for (int i = 0; i < 2000; ++i) {
    if (db.exec(sql).rows() > 0) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

struct store_behind_proxy {
  std::string schema = postgres_support::fresh_schema("cut");
  cutting_proxy proxy{postgres_support::connection_string()};
  durable::postgres::store store{{.connection = proxy.url(), .schema = schema}};
  store_behind_proxy() = default;
  store_behind_proxy(const store_behind_proxy&) = delete;
  store_behind_proxy& operator=(const store_behind_proxy&) = delete;
  ~store_behind_proxy() {
    try {
      store.drop_schema();
    } catch (...) {
    }
  }
  std::int64_t count(const std::string& sql) {
    durable::postgres::connection db(postgres_support::connection_string());
    return db.exec(sql).number(0, 0);
  }
};

}  // namespace

TEST_CASE("a checkpoint whose reply a lost connection took is found to have landed, and is not written twice", "[postgres]") {
  store_behind_proxy s;
  const durable::lease owner = s.store.start("a", "flow", started_bytes("a")).claimed->owner;
  CHECK(s.store.checkpoint(owner, completed_type, completion_bytes("a", {0, 0}, 1)).seq == 1);
  s.proxy.hold_replies();
  auto in_flight = std::async(std::launch::async, [&] {
    return s.store.checkpoint(owner, completed_type, completion_bytes("a", {0, 1}, 2)).seq;
  });
  REQUIRE(eventually("SELECT 1 FROM " + s.schema + ".record WHERE invocation_id = 'a' AND seq = 2"));  // it landed
  s.proxy.cut();                                                                                      // its reply did not
  CHECK(in_flight.get() == 2);
  CHECK(s.store.reconnections() == 1);
  CHECK(s.count("SELECT count(*) FROM " + s.schema + ".record WHERE invocation_id = 'a'") == 2);
  CHECK(s.store.checkpoint(owner, completed_type, completion_bytes("a", {0, 2}, 3)).seq == 3);  // and it goes on
}

TEST_CASE("a checkpoint lost with its connection before it landed is written once the store reconnects", "[postgres]") {
  store_behind_proxy s;
  const durable::lease owner = s.store.start("a", "flow", started_bytes("a")).claimed->owner;
  s.proxy.cut();  // the connection is gone before the write is sent
  CHECK(s.store.checkpoint(owner, completed_type, completion_bytes("a", {0, 0}, 1)).seq == 1);
  CHECK(s.store.reconnections() == 1);
  CHECK(s.count("SELECT count(*) FROM " + s.schema + ".record WHERE invocation_id = 'a'") == 1);
}

TEST_CASE("a finish whose reply a lost connection took is found to have landed", "[postgres]") {
  store_behind_proxy s;
  const durable::lease earlier = s.store.start("b", "flow", started_bytes("b")).claimed->owner;
  s.store.finish(earlier, completed_type, completion_bytes("b", {0}, 1));  // the statement is prepared now
  const durable::lease owner = s.store.start("a", "flow", started_bytes("a")).claimed->owner;
  s.proxy.hold_replies();
  auto in_flight = std::async(std::launch::async, [&] {
    s.store.finish(owner, completed_type, completion_bytes("a", {0}, 1));
  });
  REQUIRE(eventually("SELECT 1 FROM " + s.schema + ".invocation WHERE id = 'a' AND state = 3"));
  s.proxy.cut();
  CHECK_NOTHROW(in_flight.get());  // not ownership_lost: the finish was this worker's own
  CHECK(s.store.read("a")->state == durable::stored_state::finished);
}

TEST_CASE("invocations a lost claim took are handed back, not held by nobody", "[postgres]") {
  store_behind_proxy s;
  CHECK(s.store.claim(10).empty());  // prepares the claim's statement
  {
    durable::postgres::store other({.connection = postgres_support::connection_string(), .schema = s.schema});
    const durable::lease l = other.start("a", "flow", started_bytes("a")).claimed->owner;
    other.release(l);
  }
  // The claim's own statement (prepared by then: its parameters name this worker), past the reaping.
  s.proxy.hold_replies_after(s.store.worker());
  auto in_flight = std::async(std::launch::async, [&] { return s.store.claim(10); });
  REQUIRE(eventually("SELECT 1 FROM " + s.schema + ".invocation WHERE id = 'a' AND state = 1"));  // the claim landed
  s.proxy.cut();
  const auto claimed = in_flight.get();  // the retry, after the lost claim was handed back
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].owner.epoch == 3);  // 1 at start, 2 for the lost claim, 3 for this one
  CHECK(s.store.checkpoint(claimed[0].owner, completed_type, completion_bytes("a", {0, 0}, 1)).seq == 1);
}
