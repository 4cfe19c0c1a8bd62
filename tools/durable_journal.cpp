// durable-journal — reads a durable journal file and prints its invocations, without changing
// it. Usage and exit codes: tools/journal_inspector.hpp (`usage()`) and docs/DESIGN.md,
// "Inspecting a journal".
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "journal_inspector.hpp"

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    return durable::inspector::run(args, std::cout, std::cerr);
  } catch (...) {
    // run() reports its own errors; this is only for one thrown while copying the arguments.
    std::cerr << "durable-journal: out of memory\n";
    return durable::inspector::exit_bad_journal;
  }
}
