#!/usr/bin/env python3
"""Linear probes of a trained model's last feature map (issue 22): is there class information in
where things are on the 12x12 map, which the global average pooling of the head throws away?

For each grid g (0: the global average, as the model's own head), the map is averaged over g x g
regions, and a linear classifier (multinomial logistic regression, L2 penalty `lam`, L-BFGS, inputs
standardized) is fitted on the Training faces and their mirror images (no other augmentation) and
scored on PublicTest with one view. The backbone is not trained: what a spatial head could add with
these features, a lower bound for training one end to end (student.py --head-grid).

    python3 scripts/gpu-student/probe.py --init models/tinyfer-b1 --cache /tmp/fer.npz

--cache is student.py's decoded faces (written by any student.py run with --cache).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'gpu-teacher'))
from student import ARCHS, TinyFer, model_arch, read_tfjs  # noqa: E402


def feature_maps(model, faces, flip, batch=512):
    out = []
    with torch.no_grad():
        for i in range(0, len(faces), batch):
            x = torch.from_numpy(faces[i:i + batch]).float().div(255).unsqueeze(1)
            out.append(model.features(torch.flip(x, [3]) if flip else x))
    return torch.cat(out)


def probe(train, ytrain, test, ytest, lam, iters):
    mu, sd = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mu) / sd, (test - mu) / sd
    lin = torch.nn.Linear(train.shape[1], 7)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=iters, history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(train), ytrain) + lam * (lin.weight ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return (lin(train).argmax(1) == ytrain).float().mean().item(), (lin(test).argmax(1) == ytest).float().mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--init', required=True, help='tfjs model folder (a TinyFER architecture)')
    ap.add_argument('--cache', required=True, help='student.py --cache file (.npz of the decoded faces)')
    ap.add_argument('--grids', default='0,2,3,4,6')
    ap.add_argument('--lams', default='1e-4,1e-3')
    ap.add_argument('--iters', type=int, default=300)
    args = ap.parse_args()
    torch.manual_seed(0)
    meta, weights = read_tfjs(args.init)
    arch, float_twin = model_arch(meta)
    if arch not in ARCHS:
        raise SystemExit(f'{args.init}: model {arch} is not a TinyFER architecture ({", ".join(ARCHS)})')
    model = TinyFer(arch, weights, float_twin=float_twin).eval()
    z = np.load(args.cache, allow_pickle=False)
    maps = torch.cat([feature_maps(model, z['faces'], False), feature_maps(model, z['faces'], True)])
    test = feature_maps(model, z['tfaces'], False)
    y = torch.from_numpy(z['y'].astype(np.int64))
    ytrain, ytest = torch.cat([y, y]), torch.from_numpy(z['ty'].astype(np.int64))
    with torch.no_grad():
        own = (model.head(test).argmax(1) == ytest).float().mean().item()
    print(f'{args.init}: the model\'s own head, PublicTest one view {own * 100:.2f} %; feature map {list(test.shape[1:])}')
    for g in (int(v) for v in args.grids.split(',')):
        pool = (lambda m: F.adaptive_avg_pool2d(m, g).flatten(1)) if g else (lambda m: m.mean((2, 3)))
        tr, te = pool(maps), pool(test)
        for lam in (float(v) for v in args.lams.split(',')):
            a, b = probe(tr, ytrain, te, ytest, lam, args.iters)
            name = f'grid {g}x{g}' if g else 'global average'
            print(f'{name} ({tr.shape[1]} features), lam {lam:g}: Training {a * 100:.2f} %, PublicTest {b * 100:.2f} % '
                  f'({round(b * len(ytest))} of {len(ytest)})', flush=True)


if __name__ == '__main__':
    main()
