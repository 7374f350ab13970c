#include "tests/harness.h"

#include <chrono>
#include <cstring>
#include <vector>

namespace npr::test {

namespace {
std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}
int g_case_failures = 0;
struct Skipped {
  std::string reason;
};
}  // namespace

void register_case(const char* name, void (*fn)()) {
  cases().push_back({name, fn});
}

void record_failure(const char* file, int line, const std::string& what) {
  if (g_case_failures < 20) std::printf("    %s:%d: %s\n", file, line, what.c_str());
  ++g_case_failures;
}

void skip_case(const std::string& reason) {
  throw Skipped{reason};
}

}  // namespace npr::test

int main(int argc, char** argv) {
  using namespace npr::test;
  // Arguments: a case runs when its name contains every plain one and none of those given with a
  // leading '-' (`npr_tests cuda -wgmma`: the CUDA cases but the Hopper ones).
  auto selected = [&](const char* name) {
    for (int i = 1; i < argc; ++i) {
      const bool exclude = argv[i][0] == '-';
      if ((std::strstr(name, argv[i] + (exclude ? 1 : 0)) != nullptr) == exclude) return false;
    }
    return true;
  };
  int passed = 0, failed = 0, skipped = 0;
  for (const Case& c : cases()) {
    if (!selected(c.name)) continue;
    g_case_failures = 0;
    std::printf("[ RUN  ] %s\n", c.name);
    std::fflush(stdout);
    const auto start = std::chrono::steady_clock::now();
    try {
      c.fn();
    } catch (const Skipped& s) {
      std::printf("[ SKIP ] %s: %s\n", c.name, s.reason.c_str());
      ++skipped;
      continue;
    } catch (const std::exception& e) {
      record_failure(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    // Wall seconds of the case, as gtest prints them: what CI's time goes to.
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (g_case_failures == 0) {
      std::printf("[  OK  ] %s (%.1f s)\n", c.name, secs);
      ++passed;
    } else {
      std::printf("[ FAIL ] %s (%d failed checks, %.1f s)\n", c.name, g_case_failures, secs);
      ++failed;
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
