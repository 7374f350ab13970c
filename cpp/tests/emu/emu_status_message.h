// The emulator build's drivers answer their tests in plain strings: "" or a Status's text.
// Emulator build only (namespace npr is npr_emu there).
#pragma once

#include <string>

#include "core/status.h"

namespace emu {

inline std::string status_message(const npr::Status& s) {
  return s.is_ok() ? std::string() : s.to_string();
}

}  // namespace emu
