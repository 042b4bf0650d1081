"""Size of a fresh install of emolens, core and with each extra (site-packages of a new venv, MB).

    .venv/bin/python bench/install_size.py                  # core only (the issue's target: <= 300 MB)
    .venv/bin/python bench/install_size.py --extras video,serve,train
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def site_packages_mb(env: Path) -> float:
    (site,) = env.glob("lib/python3*/site-packages")
    total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())
    pip_own = sum(f.stat().st_size for d in site.glob("pip*") for f in d.rglob("*") if f.is_file())
    return (total - pip_own) / 1e6


def install(extra: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        target = str(REPO) if extra == "core" else f"{REPO}[{extra}]"
        pins = ["torch==2.13.0"] if extra in ("train", "all") else []  # the CPU build, as scripts/test.sh pins it
        subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *pins, target], check=True)
        return site_packages_mb(env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extras", default="", help="comma list of extras to measure besides the core")
    args = ap.parse_args()
    for extra in ["core", *[e for e in args.extras.split(",") if e]]:
        mb = install(extra)
        note = f"  (target <= 300 MB: {'met' if mb <= 300 else 'NOT met'})" if extra == "core" else ""
        print(f"{extra:<10} {mb:8.1f} MB in site-packages (pip itself excluded){note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
