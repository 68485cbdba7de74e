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

// glibc gives threads that allocate at once arenas of their own (up to 8 per
// core) and seldom hands what is freed in them back: under hours of mixed
// requests a server's RSS crept up 60-80 MB per 15 s of load with the
// default, and stayed flat with 2 arenas. Caps the arenas at `arenas`
// unless MALLOC_ARENA_MAX says otherwise. Call before any thread starts.
void LimitMallocArenas(int arenas);

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_PROCESS_H_
