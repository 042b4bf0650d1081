"""The report's "About the model" block: which model made the numbers, how accurate it is on its
test split, which emotions it barely recognises, and the licence of its training data, all read
from the model card that :func:`emolens.campaign.modelcard.model_card` built from the model's
own metadata."""

from __future__ import annotations

from typing import Any

from .modelcard import WEAK_F1
from .report_svg import finite
from .report_tables import esc, mapping_of


def model_section(model: object) -> str:
    """``<section id="model">`` (a short note when the summary has no model card)."""
    m = mapping_of(model)
    name = esc(m.get("name", "—"))
    card = mapping_of(m.get("card"))
    if not card:
        return (f'<section id="model" class="model"><h2>About the model</h2><p>Model <b>{name}</b>. Its file carries '
                f"no test metrics, so its accuracy is unknown here: treat the numbers with care.</p></section>")
    facts = []
    acc, f1 = finite(card.get("accuracy")), finite(card.get("macro_f1"))
    split = f"the {esc(card.get('dataset'))} {esc(card.get('split') or 'test')} split"
    n = finite(card.get("n"))
    if acc is not None:
        facts.append(f"It picks the right emotion for {acc * 100:.0f}% of the faces of {split}"
                     f"{f' ({int(n):,} faces)' if n else ''}; macro-F1 "
                     f"{'—' if f1 is None else f'{f1:.2f}'} (1 would be perfect on every emotion).")
    weak = [str(x) for x in card.get("weak_classes") or []]
    per_class: dict[str, Any] = mapping_of(card.get("per_class_f1"))  # type: ignore[assignment]
    if weak:
        shown = ", ".join(f"{esc(w)} (F1 {finite(per_class.get(w)) or 0:.2f})" for w in weak)
        facts.append(f"It barely recognises {shown}: curves and moments of these emotions are unreliable "
                     f"(F1 below {WEAK_F1:g}).")
    if card.get("calibrated"):
        facts.append("Its probabilities are calibrated (temperature fitted on a validation split).")
    licence = f'<p class="warn licence">{esc(card["licence"])}</p>' if card.get("licence") else ""
    items = "".join(f"<li>{f}</li>" for f in facts)
    return (f'<section id="model" class="model"><h2>About the model</h2><p>Numbers made by <b>{name}</b> '
            f"(<code>{esc(m.get('id', ''))}</code>, {esc(card.get('architecture', ''))}), read from the model "
            f"file's own metadata.</p><ul>{items}</ul>{licence}</section>")
