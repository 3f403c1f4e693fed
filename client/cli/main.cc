// relu-cli: see client/cli/cli.h.
#include <unistd.h>

#include <iostream>

#include "client/cli/cli.h"

int main(int argc, char** argv) {
  return relu::cli::RunCli(argc, argv, std::cin, std::cout, std::cerr,
                           isatty(STDOUT_FILENO) != 0);
}
