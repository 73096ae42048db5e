// Every `--help` of the binary, command and subcommand, in the GNU layout
// that scripts/man-pages.sh and the bash completion read
// (src/cli/help_formatter.h): Usage lines first, the summary the parent
// lists, options, the subcommands, the exit status, examples last.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_test_util.h"

namespace ecfs::cli_test {
namespace {

using HelpTest = EcfsCommandTest;

// The (name, summary) pairs of a --help text's "Subcommands:" list.
std::vector<std::pair<std::string, std::string>> listed_commands(const std::string& help) {
  std::vector<std::pair<std::string, std::string>> listed;
  std::istringstream lines(help);
  bool listing = false;
  for (std::string line; std::getline(lines, line);) {
    if (line == "Subcommands:") {
      listing = true;
    } else if (listing && line.empty()) {
      break;
    } else if (listing) {
      EXPECT_EQ(line.rfind("  ", 0), 0u) << line;
      const size_t name_end = line.find_first_of(", ", 2);
      const size_t summary = line.find_first_not_of(' ', line.find("  ", name_end));
      listed.emplace_back(line.substr(2, name_end - 2), line.substr(summary));
    }
  }
  return listed;
}

// Checks one --help text; `command` is what follows "ecfs" ("" for the top).
void expect_gnu_layout(const std::string& command, const std::string& summary,
                       const Outcome& help) {
  SCOPED_TRACE("ecfs " + command + " --help");
  EXPECT_EQ(help.exit_status, 0) << help.describe();
  const std::string& out = help.out;
  const std::string usage = command.empty() ? "Usage: ecfs " : "Usage: ecfs " + command;
  EXPECT_EQ(out.rfind(usage, 0), 0u) << out;
  // Usage lines (first, "or:" ones), a blank line, the summary.
  const size_t blank = out.find("\n\n");
  ASSERT_NE(blank, std::string::npos) << out;
  std::istringstream usage_lines(out.substr(0, blank));
  std::string line;
  std::getline(usage_lines, line);
  while (std::getline(usage_lines, line)) EXPECT_EQ(line.rfind("  or:  ecfs ", 0), 0u) << line;
  if (!summary.empty()) {
    EXPECT_EQ(out.substr(blank + 2, summary.size() + 1), summary + "\n");
  }
  // Examples, when given, come last (help2man's EXAMPLES runs to the end),
  // after the exit status.
  const size_t options = out.find("\nOptions:\n");
  EXPECT_NE(options, std::string::npos) << out;
  const size_t examples = out.find("\nExamples:\n");
  if (examples != std::string::npos) {
    EXPECT_GT(examples, options);
    EXPECT_EQ(out.find("\nExit status", examples), std::string::npos) << out;
    EXPECT_EQ(out.find("\nSubcommands:", examples), std::string::npos) << out;
    // Each example: a description at two spaces ending in ':', then
    // commands at four.
    std::istringstream rest(out.substr(examples + 11));
    bool described = false;
    while (std::getline(rest, line)) {
      if (line.empty()) continue;
      if (line.rfind("    ", 0) == 0) {
        EXPECT_TRUE(described) << line;
      } else {
        EXPECT_EQ(line.rfind("  ", 0), 0u) << line;
        EXPECT_EQ(line.back(), ':') << line;
        described = true;
      }
    }
  }
}

TEST_F(HelpTest, EveryHelpHasTheGnuLayout) {
  const Outcome top = ecfs({"--help"});
  expect_gnu_layout("", "an encrypted copy-on-write filesystem with per-extent fscrypt keys", top);
  const auto commands = listed_commands(top.out);
  ASSERT_GE(commands.size(), 9u);
  size_t with_examples = 0;
  for (const auto& [name, summary] : commands) {
    const Outcome help = ecfs({name, "--help"});
    expect_gnu_layout(name, summary, help);
    if (help.out.find("\nExamples:\n") != std::string::npos) ++with_examples;
    for (const auto& [sub, sub_summary] : listed_commands(help.out)) {
      expect_gnu_layout(name + " " + sub, sub_summary, ecfs({name, sub, "--help"}));
    }
  }
  // The commands people start with show how.
  EXPECT_GE(with_examples, 7u);
}

// A command with several forms shows each as a Usage line, in the order of
// its subcommands.
TEST_F(HelpTest, GroupsShowEveryForm) {
  const Outcome subvolume = ecfs({"subvolume", "--help"});
  EXPECT_EQ(subvolume.out.rfind("Usage: ecfs subvolume create PATH\n"
                                "  or:  ecfs subvolume snapshot [-r] SOURCE DEST\n",
                                0),
            0u)
      << subvolume.out;
  const Outcome policy = ecfs({"policy", "--help"});
  EXPECT_NE(
      policy.out.find("Usage: ecfs policy set DIR KEY_ID [--contents MODE] [--filenames MODE] "
                      "[--padding N] [--data-unit-size N]\n"),
      std::string::npos)
      << policy.out;
}

}  // namespace
}  // namespace ecfs::cli_test
