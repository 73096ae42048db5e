#include "cli/help_formatter.h"

#include <sstream>

namespace ecfs::cli {
namespace {

constexpr std::string_view kFormIndent = "  ecfs ";
// A long form goes on in lines indented further.
constexpr std::string_view kContinuationIndent = "   ";

// The lines of `text`, without their newlines.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::string joined(const std::vector<std::string_view>& lines, size_t from) {
  std::string out;
  for (size_t i = from; i < lines.size(); ++i) {
    out += lines[i];
    if (i + 1 < lines.size()) out += '\n';
  }
  return out;
}

}  // namespace

HelpDescription split_description(std::string_view description) {
  const std::vector<std::string_view> lines = lines_of(description);
  HelpDescription out;
  if (lines.empty()) return out;
  out.summary = lines[0];
  size_t next = 1;
  while (next < lines.size() && lines[next].empty()) ++next;
  const size_t paragraph = next;
  std::vector<std::string> forms;
  for (; next < lines.size(); ++next) {
    const std::string_view line = lines[next];
    if (line.starts_with(kFormIndent)) {
      forms.emplace_back(line.substr(2));
    } else if (!forms.empty() && line.starts_with(kContinuationIndent) &&
               line.find_first_not_of(' ') != std::string_view::npos) {
      forms.back() += ' ';
      forms.back() += line.substr(line.find_first_not_of(' '));
    } else {
      break;
    }
  }
  // Only a paragraph that is nothing but forms is the usage; anything else
  // (an example inside prose) stays where it is.
  if (forms.empty() || (next < lines.size() && !lines[next].empty())) {
    out.rest = joined(lines, paragraph);
    return out;
  }
  out.forms = std::move(forms);
  while (next < lines.size() && lines[next].empty()) ++next;
  out.rest = joined(lines, next);
  return out;
}

std::string HelpFormatter::make_help(const CLI::App* app, std::string name,
                                     CLI::AppFormatMode mode) const {
  if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
  const HelpDescription description = split_description(app->get_description());
  std::stringstream out;
  if (description.forms.empty()) {
    out << make_usage(app, name);
  } else {
    for (size_t i = 0; i < description.forms.size(); ++i) {
      out << (i == 0 ? "Usage: " : "  or:  ") << description.forms[i] << '\n';
    }
  }
  if (!description.summary.empty()) out << '\n' << description.summary << '\n';
  if (!description.rest.empty()) out << '\n' << description.rest << '\n';
  out << make_positionals(app);
  out << make_groups(app, mode);
  out << make_subcommands(app, mode);
  out << '\n' << make_footer(app);
  return out.str();
}

std::string HelpFormatter::make_subcommand(const CLI::App* sub) const {
  const std::string& description = sub->get_description();
  std::stringstream out;
  CLI::detail::format_help(out, sub->get_display_name(true),
                           description.substr(0, description.find('\n')), column_width_);
  return out.str();
}

}  // namespace ecfs::cli
