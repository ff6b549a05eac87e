"""A user's own code, named by `_target_` on the command line like dataeff's own."""

from __future__ import annotations

from dataeff.data.labelled import LabelledTextDataModule


class ReviewData(LabelledTextDataModule):
    """dataeff's labelled text with one more thing to tag the run with: where the reviews came from."""

    def __init__(self, *args, origin: str = "unknown", **kwargs):
        super().__init__(*args, **kwargs)
        self.origin = origin

    def run_tags(self) -> dict:
        return {**super().run_tags(), "data.origin": self.origin}
