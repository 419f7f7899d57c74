"""Every runtime dependency installed here has a licence from the allow-list (run: uv run poe licences).

The runtime dependencies are those ``uv export --no-dev`` lists (the tool as users install
it, without the development tools); each must carry one of the licences below, as
pip-licenses reads them from the installed packages' metadata. Exit 1 names the others.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

ALLOWED = [
    "MIT",
    "BSD",
    "Apache",
    "ISC",
    "PSF",
    "Python Software Foundation",
    "CNRI-Python",
    "0BSD",
    "Zlib",
    "CC0",
    "Mozilla Public License 2.0",  # certifi's CA bundle: file-level copyleft, used unchanged
    "MPL-2.0",
]


def runtime_packages() -> list[str]:
    """The runtime dependencies from the lock file that are installed here (extras may not be)."""
    exported = subprocess.run(
        ["uv", "export", "--no-dev", "--all-extras", "--no-hashes", "--no-emit-project", "--no-annotate", "--frozen"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = [line.split("==")[0].split(" ")[0] for line in exported.splitlines() if line and line[0].isalnum()]
    installed = []
    for name in names:
        try:
            distribution(name)
        except PackageNotFoundError:
            continue  # an optional extra not installed here
        installed.append(name)
    return installed


def main() -> int:
    """Check them; 1 when a licence is not on the list."""
    packages = runtime_packages()
    result = subprocess.run(
        ["pip-licenses", "--partial-match", "--allow-only", ";".join(ALLOWED), "--packages", *packages],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        print(result.stdout + result.stderr, file=sys.stderr)
        print("a runtime dependency's licence is not on the allow-list in .ci/licences.py", file=sys.stderr)
        return 1
    print(f"{len(packages)} runtime dependencies, every licence on the allow-list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
