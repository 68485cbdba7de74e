// Process set-up shared by the binaries that run libtorch.
#ifndef GARDEN_COMMON_BASE_PROCESS_H_
#define GARDEN_COMMON_BASE_PROCESS_H_

namespace garden {

// libgomp (libtorch's OpenMP) reads OMP_WAIT_POLICY once, when it is loaded:
// its threads otherwise spin between operations and starve the BLAS threads
// (measured 5x slower generation with 2 threads). Sets it to PASSIVE and
// restarts the program once (execv of /proc/self/exe with `argv`), unless it
// is already set. Call first thing in main(). If the restart fails the
// program goes on, only slower.
void EnsurePassiveOpenMP(char** argv);

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_PROCESS_H_
