#!/usr/bin/python3
"""ctest's entry to garden_client's tests (tests/CMakeLists.txt): runs pytest on this
folder, or exits 77 (ctest's SKIP_RETURN_CODE) naming what is missing: pytest
(python3-pytest), or the package in $PYTHONPATH (the CMake target garden_python).
pandas, matplotlib and tqdm are optional: the tests that need them skip, saying so."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


def main():
    try:
        import pytest
    except ImportError:
        print("SKIP: pytest is not installed (Debian: python3-pytest); garden_client's "
              "tests need it", file=sys.stderr)
        return SKIP
    try:
        import garden_client  # noqa: F401
    except ImportError as e:
        print(f"SKIP: garden_client does not import ({e}); build the target garden_python "
              "(PYTHONPATH=<build>/python)", file=sys.stderr)
        return SKIP
    for optional, package in (("pandas", "python3-pandas"),
                              ("matplotlib", "python3-matplotlib"), ("tqdm", "python3-tqdm")):
        try:
            __import__(optional)
        except ImportError:
            print(f"note: {optional} is not installed ({package}): the tests that need it "
                  "skip", file=sys.stderr)
    # -p no:cacheprovider: nothing written into the source tree.
    return pytest.main(["-v", "-rs", "-p", "no:cacheprovider", HERE, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
