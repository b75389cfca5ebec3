#!/usr/bin/env python3
"""A strong float teacher for distilling the binary model (PyTorch, for a GPU).

The binary model is trained by our TypeScript pipeline; this script only makes its soft targets.
It trains float ResNet-18s on FER2013 Training (never on PublicTest), cross-fitted: the faces
are split into --folds folds and model f trains on all but fold f, within a wall-time budget per
model. Each training face's teacher probabilities (averaged over 10 test-time views) come from
the one model that never saw it, so they say how recognisable the face is rather than repeat
its label. They are written as a TinyFER teacher scores file that
`tinyfer train --teacher <file>` reads.

    node scripts/gpu-teacher/pack.js                 # .gpu/fer2013.pack, from the shared data
    python3 scripts/gpu-teacher/teacher.py --pack .gpu/fer2013.pack --out runs/gpu-teacher \
        --folds 4 --seconds 105 --batch 128

(On one H200 that took 442 s: 52-56 epochs per model, each 68.9-69.7 % on PublicTest with 10
views, the four together 71.55 %; out-of-fold scores 69.5 % right on Training, in-sample 90.1 %.)

It runs on a CPU too (--device cpu), far too slowly for real training; --limit takes a slice of
the faces to check the script end to end. Outputs: train-scores.json (out-of-fold: the
teacher), train-scores-insample.json (each face by the models that trained on it),
publictest-scores.json (every model), teacher.log.
"""
import argparse
import io
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

SCORES_FORMAT = 'tinyfer-teacher-scores'  # src/train/teacher.ts TEACHER_SCORES_FORMAT


def read_pack(path, limit=0):
    """The splits of a pack.js file: {name: (keys, labels uint8[n], faces uint8[n,48,48])}."""
    buf = open(path, 'rb').read()
    if buf[:4] != b'TFPK':
        raise SystemExit(f'{path}: not a TinyFER pack')
    off = 4
    (version,) = struct.unpack_from('<I', buf, off)
    off += 4
    if version != 1:
        raise SystemExit(f'{path}: pack version {version}, expected 1')
    (n,) = struct.unpack_from('<I', buf, off)
    labels = json.loads(buf[off + 4:off + 4 + n])
    off += 4 + n
    (nsplits,) = struct.unpack_from('<I', buf, off)
    off += 4
    splits = {}
    for _ in range(nsplits):
        (n,) = struct.unpack_from('<I', buf, off)
        name = buf[off + 4:off + 4 + n].decode()
        off += 4 + n
        (count, jlen) = struct.unpack_from('<II', buf, off)
        off += 8
        keys = json.loads(buf[off:off + jlen])
        off += jlen
        y = np.frombuffer(buf, np.uint8, count, off).copy()
        off += count
        faces = np.zeros((count, 48, 48), np.uint8)
        for i in range(count):
            (ln,) = struct.unpack_from('<I', buf, off)
            off += 4
            im = Image.open(io.BytesIO(buf[off:off + ln])).convert('L')
            if im.size != (48, 48):
                im = im.resize((48, 48), Image.BILINEAR)
            faces[i] = np.asarray(im)
            off += ln
        if limit and limit < count:
            pick = np.linspace(0, count - 1, limit).astype(np.int64)  # spread over all labels
            keys, y, faces = [keys[i] for i in pick], y[pick], faces[pick]
        splits[name] = (keys, y, faces)
    return labels, splits


def run_log(folder, name):
    """A log function that prints each line with the time and appends it to <folder>/<name>."""
    os.makedirs(folder, exist_ok=True)
    logf = open(os.path.join(folder, name), 'a')

    def log(s):
        line = f'[{time.strftime("%H:%M:%S")}] {s}'
        print(line, flush=True)
        logf.write(line + '\n')
        logf.flush()
    return log


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """ResNet-18 for 48x48 faces: a stride-1 stem, stages at 48, 24, 12 and 6 pixels."""

    def __init__(self, classes, widths=(64, 128, 256, 512), dropout=0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers = []
        cin = widths[0]
        for i, w in enumerate(widths):
            layers += [Block(cin, w, 1 if i == 0 else 2), Block(w, w, 1)]
            cin = w
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.body(self.stem(x))
        return self.fc(self.drop(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


def normalise(x):
    return (x - 0.5) / 0.25


def augment(x, gen):
    """x: float [B,1,48,48] in 0..1 on the device. Random flip, rotation, scale, shift,
    brightness/contrast and one erased square, all on the device."""
    b = x.shape[0]
    dev = x.device
    r = lambda *s: torch.rand(*s, device=dev, generator=gen)
    ang = (r(b) * 2 - 1) * math.radians(15)
    scale = 1 + (r(b) * 2 - 1) * 0.15
    flip = torch.where(r(b) < 0.5, -1.0, 1.0)
    tx = (r(b) * 2 - 1) * 0.12
    ty = (r(b) * 2 - 1) * 0.12
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, mode='bilinear', padding_mode='reflection', align_corners=False)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + (r(b, 1, 1, 1) * 2 - 1) * 0.3) + mean + (r(b, 1, 1, 1) * 2 - 1) * 0.15
    # Random erasing: one square of 8..20 pixels on half the faces.
    size = (8 + r(b) * 12).long()
    cx = (r(b) * 48).long()
    cy = (r(b) * 48).long()
    ii = torch.arange(48, device=dev)
    mx = ((ii[None, :] - cx[:, None]).abs() <= size[:, None] // 2)
    my = ((ii[None, :] - cy[:, None]).abs() <= size[:, None] // 2)
    m = (my[:, :, None] & mx[:, None, :]) & (r(b) < 0.5)[:, None, None]
    x = torch.where(m[:, None], torch.full_like(x, 0.5), x)
    return x.clamp(0, 1)


def views(x):
    """Ten test-time views of x [B,1,48,48]: the face and shifts by 2 pixels, each also mirrored."""
    out = []
    for dx, dy in ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)):
        v = torch.roll(x, shifts=(dy, dx), dims=(2, 3)) if dx or dy else x
        out += [v, torch.flip(v, dims=(3,))]
    return out


@torch.no_grad()
def predict(models, faces, device, batch=1024):
    """Ensemble probabilities averaged over models and views: float32 [n, classes]."""
    probs = []
    for m in models:
        m.eval()
    for i in range(0, len(faces), batch):
        x = torch.from_numpy(faces[i:i + batch]).to(device).float().div(255).unsqueeze(1)
        acc = 0
        for m in models:
            for v in views(x):
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
                    logits = m(normalise(v).contiguous(memory_format=torch.channels_last))
                acc = acc + F.softmax(logits.float(), 1)
        probs.append((acc / (len(models) * 10)).cpu())
    return torch.cat(probs).numpy()


def train_one(seed, x, y, classes, args, device, log, test):
    torch.manual_seed(seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    model = ResNet(classes).to(device).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    other = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{'params': decay, 'weight_decay': args.wd}, {'params': other, 'weight_decay': 0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    n = x.shape[0]
    t0 = time.time()
    step = 0
    epoch = 0
    while True:
        model.train()
        perm = torch.randperm(n, device=device, generator=gen)
        tot, right, seen = 0.0, 0, 0
        for i in range(0, n - args.batch + 1, args.batch):
            frac = (time.time() - t0) / args.seconds
            if frac >= 1:
                break
            warm = 0.03
            lr = args.lr * (frac / warm if frac < warm else 0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm))))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = perm[i:i + args.batch]
            xb = normalise(augment(x[idx], gen)).contiguous(memory_format=torch.channels_last)
            yb = y[idx]
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            tot += loss.item() * len(idx) if step % 20 == 0 else 0
            right += (logits.argmax(1) == yb).sum() if step % 20 == 0 else 0
            seen += len(idx) if step % 20 == 0 else 0
        else:
            epoch += 1
            msg = f'model {seed}: epoch {epoch} {time.time() - t0:.0f} s lr {lr:.4f}'
            if seen:
                msg += f' loss {tot / seen:.3f} train acc {float(right) / seen:.3f}'
            if test is not None and epoch % 5 == 0:
                pick = slice(None, None, 4)  # every 4th PublicTest face (the pack is sorted by label)
                p = predict([model], test[1][pick], device)
                msg += f' PublicTest/4 10-view acc {(p.argmax(1) == test[0][pick]).mean():.3f}'
            log(msg)
            continue
        break
    log(f'model {seed}: {epoch} epochs, {step} steps in {time.time() - t0:.0f} s')
    return model


def scores_file(path, labels, keys, probs, meta):
    table = {k: [round(float(v), 5) for v in row] for k, row in zip(keys, probs)}
    with open(path, 'w') as f:
        json.dump({'format': SCORES_FORMAT, 'version': 1, 'labels': labels, **meta, 'scores': table}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pack', default='.gpu/fer2013.pack')
    ap.add_argument('--out', default='runs/gpu-teacher')
    ap.add_argument('--folds', type=int, default=4, help='cross-fitting folds, one model each (1: one model on all faces)')
    ap.add_argument('--seconds', type=float, default=105, help='training wall time per model')
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--wd', type=float, default=5e-4)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--limit', type=int, default=0, help='use only the first N faces of each split (a check)')
    ap.add_argument('--fold', type=int, default=-1, help='train only this fold\'s model and write <out>/fold-F.npz '
                    '(run one process per fold side by side, then --merge)')
    ap.add_argument('--merge', action='store_true', help='write the scores files from <out>/fold-*.npz (of --fold runs)')
    args = ap.parse_args()
    log = run_log(args.out, 'teacher.log')
    if args.merge:
        return merge(args, log)

    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    t0 = time.time()
    labels, splits = read_pack(args.pack, args.limit)
    keys, y, faces = splits['Training']
    tkeys, ty, tfaces = splits['PublicTest']
    gpu = torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'
    log(f'{args.pack}: Training {len(keys)}, PublicTest {len(tkeys)} faces, decoded in {time.time() - t0:.1f} s; '
        f'{gpu}, torch {torch.__version__}')
    x = torch.from_numpy(faces).to(device).float().div(255).unsqueeze(1)
    yt = torch.from_numpy(y.astype(np.int64)).to(device)
    n, k = len(keys), len(labels)
    # Cross-fitting: model f never sees fold f, and gives those faces their (out-of-fold) scores.
    fold = np.zeros(n, np.int64)
    if args.folds > 1:
        fold[np.random.RandomState(args.seed).permutation(n)] = np.arange(n) % args.folds
    oof = np.zeros((n, k), np.float32)
    insample = np.zeros((n, k), np.float32)
    seen = np.zeros(n, np.float32)
    ptest = np.zeros((len(tkeys), k), np.float32)
    for f in range(args.folds):
        if args.fold >= 0 and f != args.fold:
            continue
        held = fold == f if args.folds > 1 else np.zeros(n, bool)
        idx = torch.from_numpy(np.nonzero(~held)[0]).to(device)
        model = train_one(args.seed + f, x[idx], yt[idx], k, args, device, log, (ty, tfaces))
        p = predict([model], faces, device)
        oof[held] = p[held]
        insample[~held] += p[~held]
        seen[~held] += 1
        pt = predict([model], tfaces, device)
        ptest += pt / args.folds
        msg = f'model {args.seed + f}: PublicTest {(pt.argmax(1) == ty).mean() * 100:.2f} %'
        if held.any():
            msg += f', its held-out fold {(p[held].argmax(1) == y[held]).mean() * 100:.2f} %'
        log(msg + ' (10 views)')
        del model
    if args.fold >= 0:
        np.savez(os.path.join(args.out, f'fold-{args.fold}.npz'), held=fold == args.fold, oof=oof, insample=insample,
                 seen=seen, ptest=ptest * args.folds, keys=np.asarray(keys), y=y, tkeys=np.asarray(tkeys), ty=ty,
                 labels=np.asarray(labels), gpu=np.asarray(gpu), torch=np.asarray(torch.__version__))
        log(f'fold {args.fold}: wrote fold-{args.fold}.npz in {time.time() - t0:.0f} s total')
        return
    write_scores(args, log, labels, keys, y, ty, tkeys, oof, insample / seen[:, None], ptest, gpu, torch.__version__)
    log(f'wrote the scores files to {args.out} in {time.time() - t0:.0f} s total')


def merge(args, log):
    """The scores files of --fold runs: each face's out-of-fold scores from the model that held it out."""
    parts = [np.load(os.path.join(args.out, f'fold-{f}.npz')) for f in range(args.folds)]
    z = parts[0]
    oof = sum(p['oof'] for p in parts)
    held = sum(p['held'].astype(np.int64) for p in parts)
    if not (held == 1).all():
        raise SystemExit(f'{args.out}: the folds do not cover every training face exactly once')
    insample = sum(p['insample'] for p in parts) / np.maximum(1, sum(p['seen'] for p in parts))[:, None]
    ptest = sum(p['ptest'] for p in parts) / len(parts)
    write_scores(args, log, [str(v) for v in z['labels']], [str(k) for k in z['keys']], z['y'], z['ty'],
                 [str(k) for k in z['tkeys']], oof, insample, ptest, str(z['gpu']), str(z['torch']))
    log(f'merged {len(parts)} folds into the scores files in {args.out}')


def write_scores(args, log, labels, keys, y, ty, tkeys, oof, insample, ptest, gpu, version):
    acc = lambda p, t: float((p.argmax(1) == t).mean())
    log(f'{args.folds} model(s): PublicTest {acc(ptest, ty) * 100:.2f} % (all models), Training in-sample '
        f'{acc(insample, y) * 100:.2f} %' + (f', out-of-fold {acc(oof, y) * 100:.2f} %' if args.folds > 1 else '') + ' (10 views)')
    meta = {
        'teacher': f'{args.folds} x ResNet-18 (48x48, float), PyTorch {version}, {args.seconds:.0f} s each on {gpu}',
        'views': 10,
        'trainedOn': 'FER2013 Training' + (f', {args.folds}-fold cross-fitted' if args.folds > 1 else ''),
        'publicTestAccuracy': round(acc(ptest, ty), 4),
        'args': vars(args),
    }
    if args.folds > 1:
        scores_file(os.path.join(args.out, 'train-scores.json'), labels, keys, oof,
                    {**meta, 'scores of': 'each face by the model that did not train on it', 'accuracy': round(acc(oof, y), 4)})
    scores_file(os.path.join(args.out, 'train-scores-insample.json' if args.folds > 1 else 'train-scores.json'), labels, keys, insample,
                {**meta, 'scores of': 'each face by the models that trained on it', 'accuracy': round(acc(insample, y), 4)})
    scores_file(os.path.join(args.out, 'publictest-scores.json'), labels, tkeys, ptest,
                {**meta, 'scores of': 'every model', 'accuracy': round(acc(ptest, ty), 4)})


if __name__ == '__main__':
    main()
