#include "common/base/process.h"

#include <unistd.h>

#include <cstdlib>

namespace garden {

void EnsurePassiveOpenMP(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace garden
