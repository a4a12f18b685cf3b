"""Label vocabularies of the attribute model.

The toolchain writes them into model metadata, the agent reads them back.
"""

from __future__ import annotations

# FairFace's nine age groups; lower bound in years of each group (the upper bound is the next one's lower bound).
AGE_GROUPS: tuple[str, ...] = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
AGE_GROUP_MIN: tuple[int, ...] = (0, 3, 10, 20, 30, 40, 50, 60, 70)
GENDERS: tuple[str, ...] = ("male", "female")  # UTKFace: 0 = male, 1 = female
RACES: tuple[str, ...] = ("white", "black", "asian", "indian", "other")  # UTKFace race field 0..4

HEAD_LABELS: dict[str, tuple[str, ...]] = {"age": AGE_GROUPS, "gender": GENDERS, "race": RACES}

# FairFace's seven race labels folded onto UTKFace's five groups, so FairFace manifests can be used directly.
RACE_ALIASES: dict[str, str] = {
    "white": "white",
    "black": "black",
    "asian": "asian",
    "east asian": "asian",
    "east_asian": "asian",
    "southeast asian": "asian",
    "southeast_asian": "asian",
    "indian": "indian",
    "latino_hispanic": "other",
    "latino hispanic": "other",
    "middle eastern": "other",
    "middle_eastern": "other",
    "others": "other",
    "other": "other",
}


def age_group_index(age_years: float) -> int:
    """Index into AGE_GROUPS for an age in years."""
    idx = 0
    for i, lo in enumerate(AGE_GROUP_MIN):
        if age_years >= lo:
            idx = i
    return idx
