// Fields of /proc/self/mountinfo as the kernel writes them.
#pragma once

#include <string>
#include <string_view>

namespace ecfs {

// A path field with its escapes undone: the kernel writes space, tab,
// newline and backslash as \ooo (fs/proc_namespace.c show_mountinfo,
// seq_path_root's mangle set).
std::string unescape_mountinfo_field(std::string_view field);

}  // namespace ecfs
