"""Campaign analytics: how viewers' faces react, second by second, to ads (issue 6).

    from emolens.campaign import analyze_campaign, load_manifest, CampaignSettings
    result = analyze_campaign("campaign.yaml", "out/")     # tables, summary.json, report.html

A manifest (YAML or CSV, :mod:`.manifest`) lists the ads and the viewer recordings; every recording
is analysed once and cached (:mod:`.recording`), checked (:mod:`.qc`), turned into per-second
series in ad time (:mod:`.series`, attention: :mod:`.attention`), KPIs with bootstrap CIs
(:mod:`.kpis`, :mod:`.stats`), comparisons between ads and segments (:mod:`.compare`), one verdict
(:mod:`.verdict`) and percentiles among earlier ads (:mod:`.norms`); :mod:`.outputs` writes the files.
Definitions and file formats: ``docs/campaigns.md``. No torch is imported here.
Names are imported lazily so ``import emolens.campaign`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manifest import Ad, Manifest, ManifestError, Recording, load_manifest
    from .run import CampaignResult, CampaignSettings, analyze_campaign

_WHERE = {
    "Ad": "manifest", "Manifest": "manifest", "ManifestError": "manifest", "Recording": "manifest",
    "load_manifest": "manifest", "CampaignResult": "run", "CampaignSettings": "run", "analyze_campaign": "run",
}

__all__ = ["Ad", "CampaignResult", "CampaignSettings", "Manifest", "ManifestError", "Recording",
           "analyze_campaign", "load_manifest"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'emolens.campaign' has no attribute {name!r}")
