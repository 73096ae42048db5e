#include "base/error.h"

#include <cstring>

namespace ecfs {

std::string Error::to_string() const { return message_ + " (" + std::strerror(errno_value_) + ")"; }

}  // namespace ecfs
