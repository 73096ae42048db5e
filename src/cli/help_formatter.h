// How `ecfs ... --help` is laid out: GNU style, which man(1) readers know and
// help2man turns into manual pages without help (scripts/man-pages.sh):
//
//   Usage: ecfs key add MOUNTPOINT [--key-file FILE]
//     or:  ecfs key remove MOUNTPOINT KEY_ID [--all-users]
//
//   <one-line summary>
//
//   <the rest of the description>
//   Options: ... Subcommands: ... <footer: exit status, then Examples:>
//
// A command writes its description as: the summary line, a blank line, a
// paragraph of usage forms (each line "  ecfs ...", a long one continued on
// lines indented further), and the rest. The
// forms become the Usage lines; a description without them gets CLI11's
// usage line. Subcommand lists show only each description's summary line.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ecfs::cli {

// A description taken apart as above.
struct HelpDescription {
  std::string summary;             // the first line
  std::vector<std::string> forms;  // "ecfs key add MOUNTPOINT ...", without the indent
  std::string rest;                // the paragraphs after the forms (or the summary)
};
HelpDescription split_description(std::string_view description);

class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override;
  std::string make_subcommand(const CLI::App* sub) const override;
};

}  // namespace ecfs::cli
