#!/usr/bin/env python
"""Write tiny Something-Something V1/V2 and Kinetics-400 datasets in exactly
the layouts MMAction2's ``tools/data`` scripts leave, with the real class
names and label indices.

Example::

    python tools/data/generate_layouts.py --root /tmp/tiny
    cd /tmp/tiny && python $H2CN/tools/train.py \\
        $H2CN/configs/h2cn_r50_8x1_sthv1.py --cfg-options ...

writes, under ``ROOT/data`` (the paper configs read ``data/...`` relative
to the current directory)::

    sthv1/rawframes/<id>/00001.jpg ...         (frames, '{:05}.jpg')
    sthv1/sthv1_{train,val}_list_rawframes.txt  ('<id> <num_frames> <label>')
    sthv2/videos/<id>.webm                      (VP9, as downloaded)
    sthv2/sthv2_{train,val}_list_videos.txt     ('<id>.webm <label>')
    kinetics400/videos_{train,val}/<class_with_underscores>/
        <youtube id>_<start:06>_<end:06>.mp4
    kinetics400/kinetics400_{train,val}_list_videos.txt
                                                ('<class>/<file>.mp4 <label>')

as ``tools/data/build_file_list.py`` (``--shuffle``) writes them after
``tools/data/{sthv1,sthv2,kinetics}``'s download and extraction steps
(Kinetics after ``rename_classnames.sh``). Label ``i`` is line ``i`` of
MMAction2's label map of the dataset (:func:`label_map_file`). A clip of a
"left to right" class shows a square moving to the right, its "right to
left" twin one moving to the left.

Frame counts cycle through ``--frames``: the defaults include clips shorter
than 5 x 8 frames, as Something-Something V1 has, and clips shorter than the
segments need (their segments repeat the last frame).
"""
import argparse
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence

import numpy as np

from h2cn_mmaction.datasets import label_map_file, load_label_map
from generate_synthetic import load_synthetic  # tools/data, beside this

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

DATASETS = ('sthv1', 'sthv2', 'k400')
#: Classes written by default: the left/right pairs (what a horizontal flip
#: swaps) and, for Kinetics, names that ``rename_classnames.sh`` changes.
DEFAULT_CLASSES = {
    'sthv1': ('Pushing something from left to right',
              'Pushing something from right to left', 'Holding something'),
    'sthv2': ('Pushing something from left to right',
              'Pushing something from right to left',
              'Approaching something with your camera'),
    'k400': ('abseiling', 'passing American football (in game)',
             "massaging person's head"),
}
#: Frame counts (cycled) by default: SSv1-like lengths, including clips
#: shorter than 5 x 8 and than the segments need; Kinetics clips are longer.
DEFAULT_FRAMES = {'sthv1': (45, 20, 8, 3), 'sthv2': (36, 6),
                  'k400': (60, 24)}
FPS = {'sthv1': 12, 'sthv2': 12, 'k400': 30}


def class_names(dataset: str) -> List[str]:
    """The class names of ``dataset`` (``'sthv1'``, ``'sthv2'``, ``'k400'``)
    in MMAction2's label order (the label maps shipped with the package)."""
    if dataset not in DATASETS:
        raise ValueError(f'dataset must be one of {DATASETS}, got '
                         f'{dataset!r}')
    return load_label_map(label_map_file(dataset))


def make_frames(name: str, num_frames: int, height: int,
                rng: np.random.Generator) -> np.ndarray:
    """``(num_frames, height, width, 3)`` uint8 RGB frames, ``width`` about
    ``1.75 * height`` (and even), as Something-Something's 100-pixel-high
    frames: a square moving right ("left to right" classes), left ("right
    to left") or in a random direction, over noise. (decord 0.6 cannot
    decode VP9 videos of some sizes, e.g. 48 x 32; 56 x 32 is fine.)"""
    width = 7 * height // 8 * 2
    side = max(2, height // 4)
    if 'left to right' in name:
        direction = 1
    elif 'right to left' in name:
        direction = -1
    else:
        direction = int(rng.choice([-1, 1]))
    xs = np.linspace(0, width - side, max(num_frames, 2))[:num_frames]
    if direction < 0:
        xs = xs[::-1]
    y = int(rng.integers(0, height - side + 1))
    colour = rng.integers(128, 256, size=3, dtype=np.uint8)
    frames = rng.integers(0, 96, size=(num_frames, height, width, 3),
                          dtype=np.uint8)
    for t, x in enumerate(xs.astype(int)):
        frames[t, y:y + side, x:x + side] = colour
    return frames


def _write_frames(folder: str, frames: np.ndarray) -> None:
    """``{:05}.jpg`` frames from 1, as SSv1's download has them."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(frames, 1):
        if not cv2.imwrite(osp.join(folder, f'{t:05}.jpg'),
                           np.ascontiguousarray(frame[..., ::-1])):
            raise OSError(f'{folder}: cannot write frame {t:05}.jpg')


def _youtube_id(rng: np.random.Generator) -> str:
    chars = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
             '0123456789-_')
    return ''.join(chars[i] for i in rng.integers(0, len(chars), size=11))


def generate(root: str,
             dataset: str,
             classes: Optional[Sequence[str]] = None,
             train_per_class: int = 1,
             val_per_class: int = 1,
             frames: Optional[Sequence[int]] = None,
             height: int = 32,
             seed: int = 0) -> Dict[str, str]:
    """Write one tiny dataset under ``root/data`` (see the module doc).

    Args:
        root (str): The folder holding ``data/``.
        dataset (str): ``'sthv1'``, ``'sthv2'`` or ``'k400'``.
        classes (Sequence[str], optional): Class names (of the label map) to
            write clips of. Defaults to :data:`DEFAULT_CLASSES`.
        train_per_class (int): Training clips per class. Defaults to 1.
        val_per_class (int): Validation clips per class. Defaults to 1.
        frames (Sequence[int], optional): Frame counts, cycled over the
            clips. Defaults to :data:`DEFAULT_FRAMES`.
        height (int): Frame height (width 1.75x). Defaults to 32.
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: ``{'train': list, 'val': list, 'data': folder}``, the paths
        written.
    """
    names = class_names(dataset)
    classes = list(DEFAULT_CLASSES[dataset] if classes is None else classes)
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise ValueError(f'not {dataset} classes (see '
                         f'{label_map_file(dataset)}): {unknown}')
    counts = list(DEFAULT_FRAMES[dataset] if frames is None else frames)
    rng = np.random.default_rng(seed)
    base = {'sthv1': 'sthv1', 'sthv2': 'sthv2', 'k400': 'kinetics400'}[dataset]
    out = osp.join(root, 'data', base)
    written = {}
    next_id = int(rng.integers(1, 100000))
    clip = 0
    for split, per_class in (('train', train_per_class),
                             ('val', val_per_class)):
        lines = []
        for name in classes:
            label = names.index(name)
            for _ in range(per_class):
                num_frames = counts[clip % len(counts)]
                clip += 1
                pixels = make_frames(name, num_frames, height, rng)
                if dataset == 'sthv1':
                    data = osp.join(out, 'rawframes')
                    _write_frames(osp.join(data, str(next_id)), pixels)
                    lines.append(f'{next_id} {num_frames} {label}\n')
                elif dataset == 'sthv2':
                    data = osp.join(out, 'videos')
                    os.makedirs(data, exist_ok=True)
                    load_synthetic().write_video(osp.join(data, f'{next_id}.webm'), pixels,
                                FPS[dataset])
                    lines.append(f'{next_id}.webm {label}\n')
                else:
                    data = osp.join(out, f'videos_{split}')
                    folder = name.replace('"', '').replace(' ', '_')
                    start = int(rng.integers(0, 300))
                    video = (f'{folder}/{_youtube_id(rng)}_{start:06}_'
                             f'{start + 10:06}.mp4')
                    os.makedirs(osp.join(data, folder), exist_ok=True)
                    load_synthetic().write_video(osp.join(data, video), pixels, FPS[dataset])
                    lines.append(f'{video} {label}\n')
                next_id += int(rng.integers(1, 1000))
        random.Random(seed).shuffle(lines)  # build_file_list.py --shuffle
        kind = 'rawframes' if dataset == 'sthv1' else 'videos'
        ann = osp.join(out, f'{base}_{split}_list_{kind}.txt')
        os.makedirs(out, exist_ok=True)
        with open(ann, 'w') as f:
            f.writelines(lines)
        written[split] = ann
    written['data'] = out
    return written


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write tiny datasets in the layouts of MMAction2\'s '
        'tools/data scripts, with the real class names.')
    parser.add_argument('--root', default='.',
                        help='folder that gets data/ (default: .)')
    parser.add_argument('--datasets', nargs='+', choices=DATASETS,
                        default=list(DATASETS))
    parser.add_argument('--train-per-class', type=int, default=1)
    parser.add_argument('--val-per-class', type=int, default=1)
    parser.add_argument('--frames', type=int, nargs='+',
                        help='frame counts, cycled over the clips (default: '
                        'per dataset, see DEFAULT_FRAMES)')
    parser.add_argument('--height', type=int, default=32,
                        help='frame height (width: 1.75x)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    for dataset in args.datasets:
        written = generate(args.root, dataset,
                           train_per_class=args.train_per_class,
                           val_per_class=args.val_per_class,
                           frames=args.frames, height=args.height,
                           seed=args.seed)
        print(f'{dataset}: {written["data"]} ({written["train"]}, '
              f'{written["val"]})')


if __name__ == '__main__':
    main()
