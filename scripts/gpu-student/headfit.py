#!/usr/bin/env python3
"""Fits a tinyfer-b1g model's grid head on its frozen binary features (issue 22): the backbone
stays exactly as it is (every binary conv, BatchNorm and attention of the init, so the blob's
features are the ones the fit saw), only the head's float weights change: the reduce C -> k (no
bias), the dense over the g x g regions and its bias. With r9 grown into b1g (`train --init
models/tinyfer-b1 --arch tinyfer-b1g --epochs 0`) this is what the linear probes of the
seventeenth session measured (probe.py: grids over r9's map add ~1 point over its own head), as a
model the C core runs.

The fit: the Training faces and their mirror images (no other augmentation: the features are
computed once), the region means standardized per channel, multinomial cross-entropy with label
smoothing and an L2 penalty `--lam` on both matrices, full-batch L-BFGS from the init's own head
(the same function as r9's global head, in standardized units) for `--iters` steps. The
standardization is then folded into the reduce and the bias (exact: the reduce is linear and
shared by every region). PublicTest, the selection set, scores each --lam; the best is written.

    python3 scripts/gpu-student/headfit.py --init .gpu/init-r9g --cache /tmp/fer.npz \\
        --lams 1e-4,3e-4,1e-3,3e-3 --out runs/r9h

Writes <out>/lam-<lam>/ (a tinyfer-b1g tfjs folder each) and <out>/best/ (the best on PublicTest),
and prints per-class recall and macro-F1 for each.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'gpu-teacher'))
from student import HEAD_GRIDS, LABELS as NAMES, TinyFer, metrics, model_arch, read_tfjs, smoothed, write_tfjs  # noqa: E402


def region_means(model, faces, flip, g, batch=512):
    """[N, g, g, C]: the last feature map averaged over g x g regions, as tfr_op_grid_head does."""
    out = []
    with torch.no_grad():
        for i in range(0, len(faces), batch):
            x = torch.from_numpy(faces[i:i + batch]).float().div(255).unsqueeze(1)
            m = model.features(torch.flip(x, [3]) if flip else x)
            out.append(F.adaptive_avg_pool2d(m, g).permute(0, 2, 3, 1))
    return torch.cat(out)


def logits(z, red, dense, bias):
    """The head on region means z [N, g, g, C] (student.py TinyFer.head's order: i, j, k)."""
    return torch.einsum('nijc,ck->nijk', z, red).reshape(z.shape[0], -1) @ dense + bias


def fit(z, y, red0, dense0, bias0, lam, iters, classes):
    """Full-batch L-BFGS of the head on standardized region means: (reduce, classifier, bias)."""
    red = red0.clone().requires_grad_(True)
    dense = dense0.clone().requires_grad_(True)
    bias = bias0.clone().requires_grad_(True)
    target = smoothed(y, classes)
    opt = torch.optim.LBFGS([red, dense, bias], max_iter=iters, history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = -(target * F.log_softmax(logits(z, red, dense, bias), 1)).sum(1).mean()
        loss = loss + lam * ((red ** 2).sum() + (dense ** 2).sum())
        loss.backward()
        return loss
    opt.step(closure)
    return red.detach(), dense.detach(), bias.detach()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--init', required=True, help='a tinyfer-b1g tfjs model folder (binary)')
    ap.add_argument('--cache', required=True, help='student.py --cache file (.npz of the decoded faces)')
    ap.add_argument('--lams', default='1e-4,3e-4,1e-3,3e-3')
    ap.add_argument('--iters', type=int, default=500)
    ap.add_argument('--raise', dest='raise_', default='', help='CLASS=V[,CLASS=V]: add V to these classes\' biases '
                    'after the fit (the calibration of r8: disgust, the rarest class), e.g. disgust=0.75')
    ap.add_argument('--scan', default='disgust', help='classes whose bias raises 0..2 (by 0.125) are scored on '
                    'PublicTest for each --lam, the other classes\' --raise kept, to choose --raise')
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    meta, weights = read_tfjs(args.init)
    arch, float_twin = model_arch(meta)
    if arch not in HEAD_GRIDS or float_twin:
        raise SystemExit(f'{args.init}: {meta["modelTopology"]["config"]["name"]}, expected a binary grid-head model ({", ".join(HEAD_GRIDS)})')
    g = HEAD_GRIDS[arch]
    model = TinyFer(arch, weights).eval()
    model.head_grid = g
    z = np.load(args.cache, allow_pickle=False)
    ztr = torch.cat([region_means(model, z['faces'], False, g), region_means(model, z['faces'], True, g)])
    zte = region_means(model, z['tfaces'], False, g)
    y = torch.from_numpy(z['y'].astype(np.int64))
    ytr, yte = torch.cat([y, y]), torch.from_numpy(z['ty'].astype(np.int64))
    classes = 7
    red0 = torch.from_numpy(weights['headg_reduce/kernel'])
    dense0 = torch.from_numpy(weights['headg/kernel'])
    bias0 = torch.from_numpy(weights['headg/bias'])

    support = np.bincount(z['ty'], minlength=classes)

    def scored(red, dense, bias):
        """(accuracy, macro-F1, recall as text, correct faces per class) on PublicTest."""
        acc, f1, rec = metrics(logits(zte, red, dense, bias).argmax(1), yte, classes)
        return acc, f1, ' '.join(f'{NAMES[c][:3]} {r * 100:.0f}' for c, r in enumerate(rec)), np.rint(np.asarray(rec) * support).astype(int)
    acc, f1, rec, _ = scored(red0, dense0, bias0)
    print(f'{args.init}: its own head, PublicTest one view {acc * 100:.2f} % ({round(acc * len(yte))}), macro-F1 {f1 * 100:.1f}, recall {rec}', flush=True)
    # standardize per channel (over faces and regions): z' = (z - mu) / sd; the init's head in those units
    mu = ztr.reshape(-1, ztr.shape[-1]).mean(0)
    sd = ztr.reshape(-1, ztr.shape[-1]).std(0) + 1e-6
    std = lambda t: (t - mu) / sd  # noqa: E731
    ztr_s, zte_s = std(ztr), std(zte)
    red_s0 = red0 * sd[:, None]
    k = red0.shape[1]
    offset0 = (mu @ red0)  # [k], what the standardization removes from every region's reduce
    bias_s0 = bias0 + offset0.repeat(g * g) @ dense0
    raises = np.zeros(classes, np.float32)
    for item in filter(None, args.raise_.split(',')):
        name, _, v = item.partition('=')
        if name not in NAMES:
            raise SystemExit(f'--raise {item}: the class is one of {", ".join(NAMES)}')
        raises[NAMES.index(name)] = float(v)
    best = None
    for lam in (float(v) for v in args.lams.split(',')):
        red_s, dense, bias_s = fit(ztr_s, ytr, red_s0, dense0, bias_s0, lam, args.iters, classes)
        # fold: red = red_s / sd; bias = bias_s - (mu @ red) repeated over the regions @ dense
        red = red_s / sd[:, None]
        bias = bias_s - (mu @ red).repeat(g * g) @ dense
        for name in filter(None, args.scan.split(',')):
            c = NAMES.index(name)
            row = []
            for v in np.arange(0, 2.01, 0.125):
                b = bias + torch.from_numpy(raises)  # the other classes' --raise kept
                b[c] = bias[c] + float(v)
                a, _, _, right = scored(red, dense, b)
                row.append(f'+{v:.2f}: {a * 100:.2f} % ({right[c]})')
            print(f'lam {lam:g}, {name} bias raised (correct {name} faces in brackets): ' + ', '.join(row), flush=True)
        folded = (logits(zte_s, red_s, dense, bias_s) - logits(zte, red, dense, bias)).abs().max().item()
        bias = bias + torch.from_numpy(raises)
        tr_acc = (logits(ztr, red, dense, bias).argmax(1) == ytr).float().mean().item()
        acc, f1, rec, _ = scored(red, dense, bias)
        print(f'lam {lam:g}: Training (+ mirrors) {tr_acc * 100:.2f} %, PublicTest {acc * 100:.2f} % ({round(acc * len(yte))}), '
              f'macro-F1 {f1 * 100:.1f}, recall {rec}; folding changes the logits by {folded:.1e}', flush=True)
        w = dict(weights)
        w['headg_reduce/kernel'] = red.numpy()
        w['headg/kernel'] = dense.numpy()
        w['headg/bias'] = bias.numpy()
        note = (f'headfit.py {arch} head fitted on the frozen features of {args.init}, lam {lam:g}, {args.iters} L-BFGS steps'
                + (f', biases raised {args.raise_}' if args.raise_ else ''))
        write_tfjs(os.path.join(args.out, f'lam-{lam:g}'), meta, w, note)
        if best is None or acc > best[0]:
            best = (acc, lam, w, note)
    write_tfjs(os.path.join(args.out, 'best'), meta, best[2], best[3])
    print(f'best on PublicTest: lam {best[1]:g}, {best[0] * 100:.2f} % -> {os.path.join(args.out, "best")}')


if __name__ == '__main__':
    main()
