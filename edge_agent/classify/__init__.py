"""Attribute classification stage: face crop per model metadata → int8 MobileNetV2 → per-head probabilities."""

from edge_agent.classify.classifier import ATTRIBUTE_HEADS, AttributeClassifier
from edge_agent.classify.model import PACKAGED_MODEL, AttributeModel

__all__ = ["ATTRIBUTE_HEADS", "PACKAGED_MODEL", "AttributeClassifier", "AttributeModel"]
