"""Exports of a built dataset to the formats trainers and evaluators read."""
