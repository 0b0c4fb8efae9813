"""The dataset builder: filter, describe, formulate, split, write."""
