"""Scoring: answer extraction and rewards, the same code for evaluation and RL.

`tpru.eval` reads a model's answer with `extract.extract_answer`, and every
trainer's reward (`rewards`, built on `reward_functions`) reads it with the
same rules, so a number in an evaluation report and a reward in training
mean the same thing.

The package imports nothing from tpru outside it and nothing beyond Python's
standard library, and its modules import each other relatively: an EasyR1
run folder carries a copy of it under another name (``tpru_score/``, see
`tpru.train.easyr1_reward`) that scores exactly as tpru does on a cluster
without tpru. What it shares with the rest of tpru (the None option's text,
`InputError`) is defined here, in `shared`, and imported from here by
`tpru.schema` and `tpru.diagnostics`.
"""
