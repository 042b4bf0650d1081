"""Peak memory of a campaign analysis against its size: the figures behind the manifest limits.

    .venv/bin/python bench/campaign_memory.py --viewers 20 --seconds 3600 --bootstrap 4444

Builds a campaign of ``--viewers`` video recordings of one ad of ``--seconds`` seconds, with the
tests' fake recording analyser (a face every half second, so no video is decoded), runs
:func:`emolens.campaign.run.analyze_campaign` and prints the process's peak RSS before and after
the analysis (the fake's frame rows are held before it starts). Limits in ``docs/campaigns.md``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--viewers", type=int, default=20)
    p.add_argument("--seconds", type=int, default=3600)
    p.add_argument("--bootstrap", type=int, default=2000)
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.campaign.fakes import FakeAnalyser, frame, probs

    from emolens.campaign.run import CampaignSettings, analyze_campaign

    with tempfile.TemporaryDirectory(prefix="emolens-campaign-memory-") as tmp:
        root = Path(tmp)
        (root / "r").mkdir()
        rows = {}
        lines = ["ads:", f"  - {{name: A, duration_s: {args.seconds}}}", "recordings:"]
        for i in range(args.viewers):
            (root / "r" / f"v{i}.mp4").write_bytes(b"x")
            rows[f"v{i}.mp4"] = [frame(t / 2, probs("happiness", 0.7)) for t in range(args.seconds * 2)]
            lines.append(f"  - {{viewer: v{i}, ad: A, recording: r/v{i}.mp4}}")
        (root / "m.yaml").write_text("\n".join(lines) + "\n")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        analyze_campaign(root / "m.yaml", root / "out", FakeAnalyser(rows),
                         CampaignSettings(bootstrap=args.bootstrap), progress=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.viewers} viewers x {args.seconds} s ({args.viewers * args.seconds} viewer-seconds), bootstrap "
          f"{args.bootstrap}: peak RSS {peak:.0f} MB (before the analysis {before:.0f} MB, +{peak - before:.0f} MB), "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
