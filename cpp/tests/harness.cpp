#include "tests/harness.h"

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
  // argv[1]: run the cases whose names contain it; with a leading '-', the others.
  const char* filter = argc > 1 ? argv[1] : nullptr;
  const bool exclude = filter && filter[0] == '-';
  if (exclude) ++filter;
  int passed = 0, failed = 0, skipped = 0;
  for (const Case& c : cases()) {
    if (filter && (std::strstr(c.name, filter) != nullptr) == exclude) continue;
    g_case_failures = 0;
    std::printf("[ RUN  ] %s\n", c.name);
    std::fflush(stdout);
    try {
      c.fn();
    } catch (const Skipped& s) {
      std::printf("[ SKIP ] %s: %s\n", c.name, s.reason.c_str());
      ++skipped;
      continue;
    } catch (const std::exception& e) {
      record_failure(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    if (g_case_failures == 0) {
      std::printf("[  OK  ] %s\n", c.name);
      ++passed;
    } else {
      std::printf("[ FAIL ] %s (%d failed checks)\n", c.name, g_case_failures);
      ++failed;
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
