"""How far from TSM the demo models start when trained from scratch.

For each demo model (``configs/demo``), freshly initialised and in training
mode (BatchNorm on batch statistics), one fixed clip is run through the
backbone inside ``--trials`` batches of random other clips. Printed as a
Markdown table:

* the mean cosine similarity of that clip's features between the batches
  (1: its features do not depend on its batch mates),
* the CMCB gates (mean, standard deviation, lowest and highest over every
  channel of every clip and block).

Example::

    python tools/init_stats.py                  # docs/evidence.md's table
"""
import argparse
import os.path as osp

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

MODELS = (
    ('TSM', 'tsm', {}),
    ("H2CN, the authors' init", 'h2cn',
     dict(cmcb_cfg=dict(zero_init_gate=False))),
    ('H2CN, zero_init_gate', 'h2cn', dict(cmcb_cfg=dict(zero_init_gate=True))),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trials', type=int, default=8,
                        help='batches the clip is run in')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def build(config, backbone):
    from mmaction.registry import MODELS as REGISTRY
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.model.backbone.update(backbone)
    model = REGISTRY.build(cfg.model)
    model.init_weights()
    return model.train(), cfg


def stats(model, cfg, trials, batch):
    """Cosine similarity of one clip's features across batches, and the
    gates of every CMCB."""
    from h2cn_mmaction.models import CMCB
    frames = cfg.model.backbone.get('frames_per_segment', 1)
    segments = cfg.num_segments
    gates = []

    def keep_gate(module, inputs, output):
        x, y = inputs[0].flatten(2), output.flatten(2)
        norm = (x * x).sum(-1)  # the gate of a channel: y = gate * x
        gates.append(((x * y).sum(-1) / norm.clamp_min(1e-12))[norm > 0])

    hooks = [m.register_forward_hook(keep_gate) for m in model.modules()
             if isinstance(m, CMCB)]
    clip = torch.randn(1, segments * frames, 3, 32, 32)
    feats = []
    for _ in range(trials):
        x = torch.cat([clip, torch.randn(batch - 1, *clip.shape[1:])])
        x = x.reshape(batch * segments, frames * 3, 32, 32)
        # autograd on: the CMCB then gates a copy, which the hook compares
        out = model.backbone(x)
        feats.append(out.mean((2, 3))[:segments].flatten().detach())
    for hook in hooks:
        hook.remove()
    feats = torch.stack(feats)
    cos = torch.nn.functional.cosine_similarity(
        feats[:, None], feats[None], dim=-1)
    cos = cos[~torch.eye(trials, dtype=torch.bool)].mean().item()
    gate = torch.cat(gates) if gates else None
    return cos, gate


def main(argv=None):
    args = parse_args(argv)
    import h2cn_mmaction  # noqa: F401
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    MMLogger.get_current_instance().setLevel('WARNING')
    rows = ['| model at initialisation | cosine of one clip\'s features '
            'across batches | CMCB gate mean ± std | gate min – max |',
            '|---|---|---|---|']
    for title, name, backbone in MODELS:
        torch.manual_seed(args.seed)
        model, cfg = build(
            osp.join(ROOT, 'configs', 'demo', f'{name}_r18_synthetic.py'),
            backbone)
        cos, gate = stats(model, cfg, args.trials, args.batch)
        if gate is None:
            cells = 'no gate | –'
        else:
            cells = (f'{gate.mean():.2f} ± {gate.std():.2f} | '
                     f'{gate.min():.2f} – {gate.max():.2f}')
        rows.append(f'| {title} | {cos:.3f} | {cells} |')
    print('\n'.join(rows))
    return rows


if __name__ == '__main__':
    main()
