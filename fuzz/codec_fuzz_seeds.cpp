// Writes the seed corpus of codec_fuzz: a few encoded sample values of each fuzzed type.
//   build/fuzz/fuzz/codec_fuzz_seeds fuzz/corpus/codec
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <limits>
#include <string>
#include <vector>

#include "codec_fuzz_types.hpp"

namespace {

template <class T>
void write_seed(const std::string& dir, const std::string& name, std::uint8_t selector,
                const T& value) {
  const std::vector<std::byte> bytes = durable::encode(value);
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.put(static_cast<char>(selector));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + dir + "/" + name);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using namespace codec_fuzz;

  write_seed(dir, "map-empty", 0, nested_map{});
  write_seed(dir, "map-sample", 0,
             nested_map{{"", {}},
                        {"a", {std::nullopt, std::tuple{std::int64_t{-1}, 0.5, true}}},
                        {"zz", {std::tuple{std::numeric_limits<std::int64_t>::min(),
                                           std::numeric_limits<double>::quiet_NaN(), false}}}});

  record r;
  r.id = 65535;
  r.name = "seed";
  r.position = {-0.0F, std::numeric_limits<float>::infinity()};
  r.timeout = std::chrono::milliseconds(1500);
  r.size = kind::large;
  r.flags = {true, false, true};
  r.empties = {{-3, std::vector<std::monostate>(3)}, {7, {}}};
  r.letter = u'\u00e9';
  r.tiny = -128;
  write_seed(dir, "record-default", 1, record{});
  write_seed(dir, "record-sample", 1, r);

  tree t{1, {tree{2, {}, "leaf"}, tree{-3, {tree{4, {}, std::nullopt}}, ""}}, "root"};
  write_seed(dir, "tree-sample", 2, t);

  write_seed(dir, "empties-sample", 3, empties{{}, std::vector<std::tuple<>>(5)});

  write_seed(dir, "scalars-limits", 4,
             scalars{255, 65535, 4294967295U, std::numeric_limits<std::uint64_t>::max(), -32768,
                     -2147483647 - 1, std::numeric_limits<std::int64_t>::min(), L'x', U'\U0010FFFF',
                     std::numeric_limits<float>::denorm_min(), -1.0});
  write_seed(dir, "scalars-zero", 4, scalars{});

  write_seed(dir, "percents-sample", 5, percents{{percent{0}, "none"}, {percent{100}, "all"}});
  return 0;
}
