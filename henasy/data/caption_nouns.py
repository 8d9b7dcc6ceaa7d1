"""HelpingHands' noun lists: the nouns of a caption, found by matching its words to the tagged synonyms.

HENASY's NEC (§3.3, Eq. 7) uses "the pre-extracted narration's nouns ... from [4]" (§4), i.e. the lists
HelpingHands builds in ``extract_noun`` (Chuhanxx/helping_hand_for_egocentric_videos @ 46a3852 :
data_loader/EgoClip_EgoMCQ_dataset.py), which HelpingHands' own word loss also takes. The rule:

1. the candidate words are the synonym groups (taxonomy ``group`` column) of the first ``max_nouns`` (4)
   ``tag_noun`` classes of the EgoClip row;
2. the caption is split on spaces; each word loses ``.`` and ``,`` and one trailing ``s`` (HH's ``p``: its
   ``es`` branch compares one character with ``"es"`` and never fires, so ``boxes`` → ``boxe`` and
   ``glass`` → ``glas``: neither matches, as in HelpingHands);
3. adjacent word pairs that are a candidate are taken first, then single candidate words that are not part
   of a taken pair, until ``max_nouns`` are found; words of ``CAPTION_EXCLUDED_WORDS`` (hand/person/ground
   words) are never taken.

HelpingHands indexes a word vocabulary (``noun_dict_lavila_embeds.pth`` keys, one entry per synonym); here
a found word stands for its taxonomy class (the first of the tagged classes that lists it), so the lists
are sets of class indices in the ``(num_nouns,)`` multi-hot shape the noun losses take (a word found
twice, or two synonyms of one class, count once).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

MAX_CAPTION_NOUNS = 4  # HH extract_noun: max_n_words
# HH extract_noun: exclude_list (word level). HelpingHands' EgoNCE tags zero their own noun classes
# (run/train.py prepare_data: indices 102, 504, 364, 321, 556), see baselines/helpinghands.py EXCLUDED_NOUNS.
CAPTION_EXCLUDED_WORDS = (
    "hand",
    "leg",
    "left hand",
    "right hand",
    "man",
    "woman",
    "person",
    "lady",
    "they",
    "ground",
    "camera",
)


def singular(word: str) -> str:
    """HH ``extract_noun.p``: ``"cups,"`` → ``"cup"`` (drop ``.``/``,``, then one trailing ``s``)."""
    word = word.replace(".", "").replace(",", "")
    return word[:-1] if word.endswith("s") else word


def caption_noun_words(
    caption: str,
    tag_nouns: Sequence[int],
    groups: Sequence[Sequence[str]],
    *,
    max_nouns: int = MAX_CAPTION_NOUNS,
    excluded: Sequence[str] = CAPTION_EXCLUDED_WORDS,
) -> list[tuple[str, int]]:
    """``(word, class)`` pairs of ``caption`` in HelpingHands' order (pairs first), at most ``max_nouns``.

    ``tag_nouns``: the row's ``tag_noun`` class indices; ``groups``: the noun taxonomy's synonym groups by
    class index. A word's class is the first of the row's first ``max_nouns`` tags whose group lists it.
    """
    candidates: dict[str, int] = {}
    for index in list(tag_nouns)[:max_nouns]:
        if not 0 <= index < len(groups):
            raise IndexError(f"noun tag {index} is outside the taxonomy ({len(groups)} classes)")
        for word in groups[index]:
            candidates.setdefault(word, index)
    blocked = set(excluded)
    words = caption.split()
    found: list[tuple[str, int]] = []
    for first, second in zip(words[:-1], words[1:]):  # two-word nouns ("cutting board") first
        pair = f"{singular(first)} {singular(second)}"
        if pair in candidates and pair not in blocked:
            found.append((pair, candidates[pair]))
            if len(found) >= max_nouns:
                break
    in_pairs = {part for pair, _ in found for part in pair.split()}
    for raw in words:
        if len(found) >= max_nouns:
            break
        word = singular(raw)
        if word in candidates and word not in in_pairs and word not in blocked:
            found.append((word, candidates[word]))
    return found


def caption_noun_classes(
    caption: str,
    tag_nouns: Sequence[int],
    groups: Sequence[Sequence[str]],
    *,
    max_nouns: int = MAX_CAPTION_NOUNS,
    excluded: Sequence[str] = CAPTION_EXCLUDED_WORDS,
) -> list[int]:
    """The distinct classes of ``caption_noun_words``, in order of first appearance."""
    words = caption_noun_words(caption, tag_nouns, groups, max_nouns=max_nouns, excluded=excluded)
    return list(dict.fromkeys(index for _, index in words))


def multi_hot(classes: Sequence[int], size: int) -> torch.Tensor:
    """Class indices → (size,) float32 multi-hot: the ``verb_tags`` / ``noun_tags`` / ``caption_noun_tags``
    item fields (henasy/data/egoclip_dataset.py) the verb and noun losses take."""
    tags = torch.zeros(size, dtype=torch.float32)
    if classes:
        tags[torch.as_tensor(list(classes), dtype=torch.long)] = 1.0
    return tags
