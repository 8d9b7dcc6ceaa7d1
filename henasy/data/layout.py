"""Where each file lives under a dataset root (the dataset layout contract; this module is its reference).

The synthetic generator writes, and users arrange real data in, one tree::

    <root>/ego4d/{egoclip.csv, narration_{noun,verb}_taxonomy.csv, egomcq.json, verb_phrases.json,
                  lavila_rephrased.pth, video_chunks/, hand_object/, nlq/nlq_{train,val}.json, mq/moments_{train,val}.json,
                  mq/clip_annotations.json}
    <root>/ek100/{EPIC_100_{train,validation}.csv, EPIC_100_{verb,noun}_classes.csv,
                  retrieval_annotations/..., video_ht256px/<participant_id>/<video_id>.MP4}
    <root>/egtea/{action_idx.txt, train_split1.txt, test_split{1,2,3}.txt, cropped_clips/}
    <root>/grounding/{grounding_val.json, masks/<clip_id>.npz}

File names are the official ones (EgoVLP, EPIC-KITCHENS-100, EGTEA Gaze+, Ego4D episodic memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of every annotation file and video folder under a dataset ``root``."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # Ego4D (EgoClip / EgoMCQ / NLQ / MQ / HelpingHands boxes)
    @property
    def ego4d(self) -> Path:
        return self.root / "ego4d"

    @property
    def egoclip_csv(self) -> Path:
        return self.ego4d / "egoclip.csv"

    @property
    def noun_taxonomy_csv(self) -> Path:
        return self.ego4d / "narration_noun_taxonomy.csv"

    @property
    def verb_taxonomy_csv(self) -> Path:
        return self.ego4d / "narration_verb_taxonomy.csv"

    @property
    def egomcq_json(self) -> Path:
        return self.ego4d / "egomcq.json"

    @property
    def verb_phrases_json(self) -> Path:
        return self.ego4d / "verb_phrases.json"

    @property
    def ego4d_videos(self) -> Path:
        """Chunked videos, LaViLa (``<uid>.mp4/<start_sec>.mp4``) or EgoVLP (``<uid>/<k>.mp4``) layout."""
        return self.ego4d / "video_chunks"

    @property
    def hand_object(self) -> Path:
        return self.ego4d / "hand_object"

    @property
    def lavila_rephrased(self) -> Path:
        """HelpingHands' LaViLa-rephrased captions (``henasy.data.rephrased``)."""
        return self.ego4d / "lavila_rephrased.pth"

    def nlq_json(self, split: str) -> Path:
        return self.ego4d / "nlq" / f"nlq_{split}.json"

    def moments_json(self, split: str) -> Path:
        return self.ego4d / "mq" / f"moments_{split}.json"

    @property
    def mq_clip_annotations_json(self) -> Path:
        return self.ego4d / "mq" / "clip_annotations.json"

    # EPIC-KITCHENS-100
    @property
    def ek100(self) -> Path:
        return self.root / "ek100"

    def epic_csv(self, split: str) -> Path:
        """``split`` is ``train`` or ``validation``."""
        return self.ek100 / f"EPIC_100_{split}.csv"

    def epic_classes_csv(self, kind: str) -> Path:
        """``kind`` is ``verb`` or ``noun``."""
        return self.ek100 / f"EPIC_100_{kind}_classes.csv"

    @property
    def ek100_retrieval_csv(self) -> Path:
        return self.ek100 / "retrieval_annotations" / "EPIC_100_retrieval_test.csv"

    @property
    def ek100_retrieval_sentence_csv(self) -> Path:
        return self.ek100 / "retrieval_annotations" / "EPIC_100_retrieval_test_sentence.csv"

    @property
    def ek100_relevancy_pkl(self) -> Path:
        return (
            self.ek100
            / "retrieval_annotations"
            / "relevancy"
            / "caption_relevancy_EPIC_100_retrieval_test.pkl"
        )

    @property
    def ek100_videos(self) -> Path:
        """Whole videos: ``<participant_id>/<video_id>.MP4`` (see ``ek100.ek100_video_relpath``)."""
        return self.ek100 / "video_ht256px"

    # EGTEA Gaze+
    @property
    def egtea(self) -> Path:
        return self.root / "egtea"

    @property
    def egtea_action_idx(self) -> Path:
        return self.egtea / "action_idx.txt"

    def egtea_split(self, name: str) -> Path:
        """``name`` such as ``test_split1`` or ``train_split1``."""
        return self.egtea / f"{name}.txt"

    @property
    def egtea_videos(self) -> Path:
        """Trimmed clips: ``<first three '-' fields>/<clip_id>.mp4`` (see ``egtea.egtea_clip_relpath``)."""
        return self.egtea / "cropped_clips"

    # Grounding
    @property
    def grounding(self) -> Path:
        return self.root / "grounding"

    @property
    def grounding_json(self) -> Path:
        return self.grounding / "grounding_val.json"
