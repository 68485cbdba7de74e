#include "common/base/process.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>

namespace garden {

void EnsurePassiveOpenMP(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
}

void LimitMallocArenas(int arenas) {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return;
  mallopt(M_ARENA_MAX, arenas);
}

}  // namespace garden
