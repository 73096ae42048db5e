// Placeholder entry point; the command line grows subcommands in cli/.
#include <cstdio>
int main() {
  std::puts("ecfs");
  return 0;
}
