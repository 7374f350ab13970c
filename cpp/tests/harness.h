// A minimal test harness for the C++ tests (no Node, no third-party framework).
//
// TEST(name) registers a case; CHECK(cond) and CHECK_OK(status) record failures with file and
// line and let the case continue; SKIP(reason) ends a case as skipped. main() runs every case
// (or those whose name contains argv[1]) and ends with the line "N passed, N failed, N skipped".
#pragma once

#include <cstdio>
#include <string>

#include "core/status.h"

namespace npr::test {

struct Case {
  const char* name;
  void (*fn)();
};

void register_case(const char* name, void (*fn)());
void record_failure(const char* file, int line, const std::string& what);
[[noreturn]] void skip_case(const std::string& reason);

struct Registrar {
  Registrar(const char* name, void (*fn)()) { register_case(name, fn); }
};

}  // namespace npr::test

#define TEST(name)                                                     \
  static void test_##name();                                           \
  static ::npr::test::Registrar registrar_##name(#name, &test_##name); \
  static void test_##name()

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) ::npr::test::record_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_MSG(cond, msg)                                                        \
  do {                                                                              \
    if (!(cond)) ::npr::test::record_failure(__FILE__, __LINE__, std::string(msg)); \
  } while (0)

#define CHECK_OK(expr)                                                          \
  do {                                                                          \
    ::npr::Status check_ok_status_ = (expr);                                    \
    if (!check_ok_status_.is_ok())                                              \
      ::npr::test::record_failure(__FILE__, __LINE__,                           \
                                  #expr " -> " + check_ok_status_.to_string()); \
  } while (0)

#define SKIP(reason) ::npr::test::skip_case(reason)
