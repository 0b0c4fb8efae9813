"""Write a small RLDS dataset with TFDS's own writer, for `test_rlds.py`'s real-TFDS check.

Run with a Python that has tensorflow and tensorflow_datasets (not tpru's venv):

    python tests/sources/rlds_tfds_writer.py OUT_DIR

It prepares ``OUT_DIR/tiny_rlds/1.0.0/`` with ``tfds.core.GeneratorBasedBuilder``
(``download_and_prepare``): RLDS features (a ``steps`` Dataset with
``observation/image`` PNG and ``observation/wrist_image`` JPEG, ``action``,
``reward``, ``discount``, ``is_first``/``is_last``/``is_terminal``,
``language_instruction``; ``episode_metadata/file_path``), splits ``train`` (2
episodes) and ``val`` (1). Pictures follow `lerobot_fixtures.frame_pixels`
(grey level = episode, bar column = step; the wrist camera runs backwards).
The last line printed is the episodes as JSON: ``[[length, instruction], ...]``.
"""

import json
import sys

import numpy as np
import tensorflow_datasets as tfds

EPISODES = [(6, "Pick up the red block."), (5, "Open the drawer."), (7, "Push the cup left.")]
SPLITS = {"train": [0, 1], "val": [2]}


def pixels(episode, step):
    out = np.full((48, 64, 3), 30 + 50 * episode, np.uint8)
    out[:, 5 * step + 2:5 * step + 5] = 255
    return out


class TinyRlds(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        image = {"shape": (48, 64, 3)}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "steps": tfds.features.Dataset({
                "observation": tfds.features.FeaturesDict({
                    "image": tfds.features.Image(**image, encoding_format="png"),
                    "wrist_image": tfds.features.Image(**image, encoding_format="jpeg"),
                    "state": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                }),
                "action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                "reward": tfds.features.Scalar(dtype=np.float32),
                "discount": tfds.features.Scalar(dtype=np.float32),
                "is_first": tfds.features.Scalar(dtype=np.bool_),
                "is_last": tfds.features.Scalar(dtype=np.bool_),
                "is_terminal": tfds.features.Scalar(dtype=np.bool_),
                "language_instruction": tfds.features.Text(),
            }),
            "episode_metadata": tfds.features.FeaturesDict({"file_path": tfds.features.Text()}),
        }))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(indices) for split, indices in SPLITS.items()}

    def _generate_examples(self, indices):
        for i in indices:
            n, text = EPISODES[i]
            steps = [{
                "observation": {"image": pixels(i, k), "wrist_image": pixels(i, n - 1 - k),
                                "state": np.zeros(2, np.float32)},
                "action": np.zeros(7, np.float32), "reward": float(k == n - 1),
                "discount": 1.0, "is_first": k == 0, "is_last": k == n - 1,
                "is_terminal": k == n - 1, "language_instruction": text,
            } for k in range(n)]
            yield f"episode_{i}", {"steps": steps,
                                   "episode_metadata": {"file_path": f"/raw/episode_{i}.h5"}}


if __name__ == "__main__":
    TinyRlds(data_dir=sys.argv[1]).download_and_prepare()
    print(json.dumps(EPISODES))
