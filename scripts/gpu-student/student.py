#!/usr/bin/env python3
"""GPU training of the TinyFER binary network itself: a PyTorch mirror of src/model (PyTorch, for a GPU).

Our TypeScript pipeline (tfjs-node, 2 CPU cores) runs one epoch of tinyfer-b1 in ~2.5 min, so a
long schedule does not fit a session there. This script is the same network, the same
binarization (src/model/quantizers.ts), the same augmentation (src/train/train.ts augmentFace),
the same targets (label smoothing 0.1 mixed with the teacher's scores, `--distill`) and the same
BatchNorm re-estimation (recalibrateBatchNorm), written in PyTorch so that it runs on a GPU. Its
weights live under the tfjs weight names and layouts, read from and written to a tfjs model
folder, so its result is an ordinary TinyFER model: `tinyfer eval`, `tinyfer export` and
`tinyfer train --init` take it as they take any other.

    node scripts/gpu-teacher/pack.js          # .gpu/fer2013.pack (the dataset's own files; never commit it)
    python3 scripts/gpu-student/student.py --pack .gpu/fer2013.pack --init models/tinyfer-b1 \
        --teacher runs/gpu-teacher/train-scores.json --out runs/gpu-b1 --seconds 400 --lr 5e-4

`--reinit` keeps the init's topology (its architecture) but starts from fresh random weights. An init
that is a float twin (`models/tinyfer-b1-float`, `binary: false`) trains the float twin. For binary
networks: `--class-weight P` weighs the loss per class by its share^-P (rare classes up),
`--stage1 real-act|real-weights` trains two-stage (first stage with one of the two left real),
`--teacher-wait` starts on the labels alone until the teacher scores file appears (a teacher
trained side by side). `--stem-int8` trains the stem conv through its int8 grid per output channel
(straight-through gradients) and saves it on that grid (issue 17: an integer stem on the ESP32-S3). Each epoch logs PublicTest accuracy, macro-F1 and per-class recall; the
best macro-F1 epoch is also written, as `<out>/best-f1`.
Experimental, to measure a topology before it exists everywhere the model lives (issue 22):
`--topology WIDTHS:DEPTHS[:nopool]` trains another stage layout from fresh weights (binary, or its
float twin with a float init; a first depth of 0 makes the first width the stem's alone, e.g.
16,32,56:0,2,2:nopool: the stem unpooled at 48x48, then a stride-2 binary block), `--head-grid G`
replaces the global-average head by a spatial one (TinyFer.grid_head). The TypeScript side builds
neither, so their weights are written as `<out>/best.npz` etc. (by tfjs weight name), not as model
folders. The grid head of G 3 and k 8 is architecture tinyfer-b1g, which the TypeScript side
builds: grow a folder for it once (`tinyfer train --data <Training> --init models/tinyfer-b1
--arch tinyfer-b1g --stem-int8 --epochs 0 --out <dir>`: the same function as the init) and train
<dir>/best here like any other init; its results are model folders.
The learning rate warms up over the first 3 % of the budget, then follows a cosine to 2 % of the
peak (by wall time when --seconds is given, else by --epochs). After every epoch the BatchNorm
statistics are re-estimated on 2048 training faces and the one-view PublicTest accuracy
(the selection set, as in `tinyfer train --val`) is measured; the best and the last weights are
written as tfjs model folders `<out>/best` and `<out>/last` (the init's model.json, new weights).

It runs on a CPU too (--device cpu), far too slowly for real training; --limit takes a slice of
the faces to check the script end to end, and --check compares the mirror's forward pass with
the scores a tfjs model gave, --check-grad one step's loss and gradients (scripts/gpu-student/check.js
writes both). --write-scores FILE writes the init's scores on the training faces (face and mirror
image averaged) as a teacher file for --teacher, e.g. a float twin's for its binary network.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'gpu-teacher'))
from teacher import read_pack, run_log  # noqa: E402

BN_EPS = 1e-3  # src/model/network.ts
SMOOTHING = 0.1  # src/train/train.ts labelSmoothing
ARCHS = {  # src/model/archs.ts
    'tinyfer-b1': ([32, 56], [2, 2], False),
    'tinyfer-b2': ([24, 40, 64], [2, 2, 1], False),
    'tinyfer-b1r': ([32, 56], [2, 2], True),
    'tinyfer-b1g': ([32, 56], [2, 2], False),
}
LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral']  # src/data labels order
HEAD_GRIDS = {'tinyfer-b1g': 3}  # src/model/archs.ts grid (its reduce width is the weights' own)


def topology_weights(widths, depths):
    """The tfjs-named weights (zeros; --reinit draws them) of a network of these stages, as
    src/model/network.ts names them: for --topology, which the TypeScript side does not build."""
    w = {}

    def bn(name, c):
        for var, v in (('gamma', 1), ('beta', 0), ('moving_mean', 0), ('moving_variance', 1)):
            w[f'{name}/{var}'] = np.full(c, v, np.float32)
    w['stem_conv/kernel'] = np.zeros((3, 3, 1, widths[0]), np.float32)
    bn('stem_bn', widths[0])
    for kind, name, cin, cout, stride, _ in block_specs(widths, depths, False):
        if kind == 'cbam':
            h = max(1, cout // 4)
            for var, shape in (('mlp_w1', (cout, h)), ('mlp_b1', (h,)), ('mlp_w2', (h, cout)), ('mlp_b2', (cout,)),
                               ('spatial_w', (7, 7, 2, 1)), ('spatial_b', (1,))):
                w[f'{name}/{var}'] = np.zeros(shape, np.float32)
            continue
        w[f'{name}_conv/kernel'] = np.zeros((3, 3, cin, cout), np.float32)
        w[f'{name}_conv/threshold'] = np.zeros(cin, np.float32)
        bn(f'{name}_bn', cout)
        if stride != 1 or cin != cout:
            w[f'{name}_sc_conv/kernel'] = np.zeros((1, 1, cin, cout), np.float32)
            bn(f'{name}_sc_bn', cout)
        w[f'{name}_prelu/alpha'] = np.zeros((1, 1, cout), np.float32)
    w['head/kernel'] = np.zeros((widths[-1], 7), np.float32)
    w['head/bias'] = np.zeros(7, np.float32)
    return w


def block_specs(widths, depths, repeat):
    """src/model/network.ts blockSpecs: (kind, name, cin, cout, stride, shares)."""
    specs, k, cin = [], 1, widths[0]
    for stage, w in enumerate(widths):
        own = []
        for j in range(depths[stage]):
            own.append(('binary', f'b{k}', cin, w, 2 if stage > 0 and j == 0 else 1, None))
            k += 1
            cin = w
        specs += own
        if repeat:
            specs += [('binary', f'{b[1]}r', b[2], b[3], 1, b[1]) for b in own if b[4] == 1]
        if own:  # a first stage of depth 0 (--topology only) is the stem's width alone, no CBAM
            specs.append(('cbam', f'cbam{stage + 1}', w, w, 1, None))
    return specs


# ---- tfjs model folders -------------------------------------------------------------------

def read_tfjs(folder):
    """(model.json dict, {weight name: float32 array}) of a tfjs layers-model folder."""
    meta = json.load(open(os.path.join(folder, 'model.json')))
    weights = {}
    for group in meta['weightsManifest']:
        buf = b''.join(open(os.path.join(folder, p), 'rb').read() for p in group['paths'])
        off = 0
        for w in group['weights']:
            if w['dtype'] != 'float32':
                raise SystemExit(f'{folder}: weight {w["name"]} is {w["dtype"]}, expected float32')
            n = int(np.prod(w['shape'])) if w['shape'] else 1
            weights[w['name']] = np.frombuffer(buf, np.float32, n, off).reshape(w['shape']).copy()
            off += 4 * n
    return meta, weights


def model_arch(meta):
    """(architecture, float twin?) of a tfjs model folder's model.json, e.g. ('tinyfer-b1', True)
    for 'tinyfer-b1-float' (src/model/archs.ts archOf)."""
    name = meta['modelTopology']['config']['name']
    float_twin = name.endswith('-float')
    return (name[:-len('-float')] if float_twin else name), float_twin


def binary_meta(meta):
    """A float twin's model.json as its binary network's (src/model/network.ts buildNetwork
    binary: true): the model's name without '-float', every binary conv layer's `binary` flag set;
    nothing else differs, the weights keep their names and shapes."""
    out = json.loads(json.dumps(meta))
    cfg = out['modelTopology']['config']
    cfg['name'] = model_arch(meta)[0]
    for layer in cfg['layers']:
        if layer['class_name'] == 'TinyFerBinaryConv2D':
            layer['config']['binary'] = True
    return out


def write_tfjs(folder, meta, weights, note):
    """The init's model.json with these weights, in its manifest's order, as one weights.bin; weights
    of another network (--topology, --head-grid: not built by the TypeScript side yet) go to
    <folder>.npz instead, by tfjs name, with the note."""
    names = [w['name'] for g in meta['weightsManifest'] for w in g['weights']]
    if set(weights) != set(names):
        np.savez(folder + '.npz', generatedBy=np.asarray(note), **weights)
        return
    os.makedirs(folder, exist_ok=True)
    blob = b''.join(np.ascontiguousarray(weights[n], np.float32).tobytes() for n in names)
    out = dict(meta)
    out['weightsManifest'] = [{'paths': ['weights.bin'], 'weights': [w for g in meta['weightsManifest'] for w in g['weights']]}]
    out['generatedBy'] = note
    with open(os.path.join(folder, 'weights.bin'), 'wb') as f:
        f.write(blob)
    with open(os.path.join(folder, 'model.json'), 'w') as f:
        json.dump(out, f)


# ---- the network ----------------------------------------------------------------------------

class SteSign(torch.autograd.Function):
    """src/model/quantizers.ts steSign: +1 where x >= 0 else -1; gradient dy where |x| <= 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * (x.abs() <= 1).to(dy.dtype)


def binarize_kernel(k):
    """sign(W) * mean|W| per output channel (XNOR-Net); k in tfjs layout [kh, kw, cin, cout]."""
    return SteSign.apply(k) * k.abs().mean((0, 1, 2))


def quantize_per_channel(k, qmax=127):
    """src/model/quantizers.ts quantizePerChannel, float32 step by step: per output channel (the
    last axis of a tfjs kernel) q * s, s = max |w| / qmax, q = round(w / s) half away from zero."""
    s = k.abs().amax(dim=tuple(range(k.dim() - 1))) / qmax
    live = s > 0
    r = k / torch.where(live, s, torch.ones_like(s))
    q = (torch.sign(r) * torch.floor(r.abs() + 0.5)).clamp(-qmax, qmax)
    return torch.where(live, q * s, torch.zeros_like(k))


class FakeQuantInt8(torch.autograd.Function):
    """Forward: the kernel on its int8 grid (quantize_per_channel); backward: straight through."""

    @staticmethod
    def forward(ctx, k):
        return quantize_per_channel(k)

    @staticmethod
    def backward(ctx, dy):
        return dy


def conv_nhwc_kernel(k):
    """tfjs kernel [kh, kw, cin, cout] -> PyTorch [cout, cin, kh, kw]."""
    return k.permute(3, 2, 0, 1)


class TinyFer(torch.nn.Module):
    """src/model/network.ts buildNetwork (binary), parameters under the tfjs weight names."""

    def __init__(self, arch, weights, classes=7, dropout=0.05, float_twin=False, stem_pool=True):
        super().__init__()
        widths, depths, repeat = ARCHS[arch] if isinstance(arch, str) else arch
        self.stem_pool = stem_pool  # False: the first stage at 48x48 (--topology ...:nopool)
        self.head_grid = 0  # g > 0: the spatial head of --head-grid
        # float_twin: `binary: false` in src/model/layers.ts (x - t, real weights, 'same' zero padding).
        # real_act / real_weights: the first stage of two-stage training (only one of the two
        # binarized); both False is the binary network that ships.
        self.float_twin = float_twin
        # stem_int8: the stem's kernel runs on its int8 grid (straight-through gradients) and is
        # saved there, so that an integer stem computes it (issue 17: the ESP32-S3's stem).
        self.stem_int8 = False
        self.real_act = False
        self.real_weights = False
        self.specs = block_specs(widths, depths, repeat)
        self.dropout = dropout
        self.bn_names = []
        self.p = torch.nn.ParameterDict()
        self.stats = {}
        for name, w in weights.items():
            layer, var = name.split('/')
            if var in ('moving_mean', 'moving_variance'):
                self.register_buffer(self.key(name), torch.from_numpy(w.copy()))
            else:
                self.p[self.key(name)] = torch.nn.Parameter(torch.from_numpy(w.copy()))
            if var == 'gamma':
                self.bn_names.append(layer)
        self.calibrating = None  # dict of BN layer -> (mean, var) while re-estimating

    @staticmethod
    def key(name):
        return name.replace('/', '__')

    def w(self, name):
        k = self.key(name)
        return self.p[k] if k in self.p else getattr(self, k)

    def bn(self, name, x):
        g, b = self.w(f'{name}/gamma'), self.w(f'{name}/beta')
        if self.calibrating is not None or self.training:
            mean = x.mean((0, 2, 3))
            var = x.var((0, 2, 3), unbiased=False)
            if self.calibrating is not None:
                self.calibrating[name] = (mean.detach(), var.detach())
        else:
            mean, var = self.w(f'{name}/moving_mean'), self.w(f'{name}/moving_variance')
        inv = torch.rsqrt(var + BN_EPS) * g
        return x * inv[None, :, None, None] + (b - mean * inv)[None, :, None, None]

    def prelu(self, name, x):
        a = self.w(f'{name}/alpha').reshape(1, -1, 1, 1)
        return torch.where(x > 0, x, a * x)

    def cbam(self, name, x):
        w1, b1, w2, b2 = (self.w(f'{name}/{v}') for v in ('mlp_w1', 'mlp_b1', 'mlp_w2', 'mlp_b2'))
        mlp = lambda v: F.relu(v @ w1 + b1) @ w2 + b2  # noqa: E731
        ca = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
        xc = x * ca[:, :, None, None]
        pooled = torch.cat([xc.mean(1, keepdim=True), xc.amax(1, keepdim=True)], 1)
        sa = torch.sigmoid(F.conv2d(pooled, conv_nhwc_kernel(self.w(f'{name}/spatial_w')), padding=3) + self.w(f'{name}/spatial_b'))
        return xc * sa

    def forward(self, x):
        """x: [N, 1, 48, 48] in [0, 1]; returns logits [N, classes]."""
        return self.head(self.features(x))

    def features(self, x):
        """The last feature map [N, C, h, w], what the head pools."""
        stem = self.w('stem_conv/kernel')
        x = F.conv2d(x, conv_nhwc_kernel(FakeQuantInt8.apply(stem) if self.stem_int8 else stem), padding=1)
        x = self.bn('stem_bn', x)
        if self.stem_pool:
            x = F.max_pool2d(x, 2)
        for kind, name, cin, cout, stride, shares in self.specs:
            if kind == 'cbam':
                x = self.cbam(name, x)
                continue
            conv = shares or name
            shifted = x - self.w(f'{conv}_conv/threshold')[None, :, None, None]
            kernel = self.w(f'{conv}_conv/kernel')
            if self.float_twin:
                # tfjs 'same': for stride 2 on an even size the one padded row/column is at the end.
                b = F.pad(shifted, (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1))
                kernel_used = kernel
            else:
                b = shifted.clamp(-1, 1) if self.real_act else SteSign.apply(shifted)
                b = F.pad(b, (1, 1, 1, 1), value=1.0)  # +1 padding, as in BinaryConv2D
                kernel_used = kernel if self.real_weights else binarize_kernel(kernel)
            main = self.bn(f'{name}_bn', F.conv2d(b, conv_nhwc_kernel(kernel_used), stride=stride))
            short = x
            if stride != 1 or cin != cout:
                short = F.conv2d(F.avg_pool2d(x, 2), conv_nhwc_kernel(self.w(f'{name}_sc_conv/kernel')))
                short = self.bn(f'{name}_sc_bn', short)
            x = self.prelu(f'{name}_prelu', main + short)
        return x

    def head(self, x):
        """Logits [N, classes] of a feature map: global average + dense, or the --head-grid head."""
        if self.head_grid:  # average over a g x g grid of regions, 1x1 reduce, dense over all regions
            x = torch.einsum('ncij,ck->nijk', F.adaptive_avg_pool2d(x, self.head_grid), self.w('headg_reduce/kernel'))
            x = x.reshape(x.shape[0], -1)
            if self.training and self.dropout > 0:
                x = F.dropout(x, self.dropout)
            return x @ self.w('headg/kernel') + self.w('headg/bias')
        x = x.mean((2, 3))
        if self.training and self.dropout > 0:
            x = F.dropout(x, self.dropout)
        return x @ self.w('head/kernel') + self.w('head/bias')

    def grid_head(self, g, k, fresh, rng):
        """Replace the global-average head (C -> classes) by a spatial one (--head-grid): the last
        feature map averaged over g x g regions, a 1x1 reduce C -> k, a dense g*g*k -> classes.
        From trained weights (not fresh) it starts as the same function: reduce = [head | 0], the
        dense takes each region's first `classes` values / (g*g); from fresh weights, Glorot. The
        same function needs regions of equal size: g must divide the map's side (3 for b1's 12)."""
        w = self.w('head/kernel').detach().cpu().numpy()
        c, classes = w.shape
        if fresh:
            red = rng.uniform(-1, 1, (c, k)) * math.sqrt(6 / (c + k))
            dense = rng.uniform(-1, 1, (g * g * k, classes)) * math.sqrt(6 / (g * g * k + classes))
            bias = np.zeros(classes)
        else:
            if k < classes:
                raise SystemExit(f'--head-k {k}: from a trained head it must be at least {classes}')
            red = np.zeros((c, k))
            red[:, :classes] = w
            dense = np.zeros((g * g, k, classes))
            dense[:, np.arange(classes), np.arange(classes)] = 1.0 / (g * g)
            dense = dense.reshape(g * g * k, classes)
            bias = self.w('head/bias').detach().cpu().numpy()
        dev = self.w('head/kernel').device
        for name, v in (('headg_reduce/kernel', red), ('headg/kernel', dense), ('headg/bias', bias)):
            self.p[self.key(name)] = torch.nn.Parameter(torch.from_numpy(v.astype(np.float32)).to(dev))
        del self.p[self.key('head/kernel')], self.p[self.key('head/bias')]
        self.head_grid = g

    @torch.no_grad()
    def recalibrate(self, faces):
        """recalibrateBatchNorm: population statistics of every BatchNorm on these faces, each
        layer seeing the layers before it already re-estimated (one pass over all faces at once)."""
        was = self.training
        self.eval()
        self.calibrating = {}
        self.forward(faces)
        for name, (mean, var) in self.calibrating.items():
            getattr(self, self.key(f'{name}/moving_mean')).copy_(mean)
            getattr(self, self.key(f'{name}/moving_variance')).copy_(var)
        self.calibrating = None
        self.train(was)

    def tfjs_weights(self):
        out = {}
        for k, v in list(self.p.items()) + [(k, getattr(self, k)) for k in dict(self.named_buffers())]:
            out[k.replace('__', '/')] = v.detach().float().cpu().numpy()
        if self.stem_int8:
            out['stem_conv/kernel'] = quantize_per_channel(self.w('stem_conv/kernel').detach().float()).cpu().numpy()
        return out


def fresh_weights(weights, rng):
    """Random weights of the same shapes, initialised as src/model/network.ts does."""
    out = {}
    for name, w in weights.items():
        layer, var = name.split('/')
        shape = w.shape
        if var in ('gamma', 'moving_variance'):
            v = np.ones(shape)
        elif var in ('beta', 'moving_mean', 'threshold', 'mlp_b1', 'mlp_b2', 'spatial_b', 'bias'):
            v = np.zeros(shape)
        elif var == 'alpha':
            v = np.full(shape, 0.25)
        elif layer == 'stem_conv':  # he normal
            v = rng.normal(0, math.sqrt(2 / np.prod(shape[:-1])), shape)
        else:  # glorot uniform
            rf = np.prod(shape[:-2]) if len(shape) > 2 else 1
            lim = math.sqrt(6 / (rf * (shape[-2] + shape[-1])))
            v = rng.uniform(-lim, lim, shape)
        out[name] = v.astype(np.float32)
    return out


# ---- data -------------------------------------------------------------------------------------

def augment(x, gen, strength):
    """src/train/train.ts augmentFace on the device: scale 1 +- 0.1k, rotation +- 10k degrees,
    shift +- 10k %, horizontal flip, bilinear with edges repeated; contrast 1 +- 0.25k around the
    mean, brightness +- 0.12k, clipped to [0, 1]."""
    b, dev, k = x.shape[0], x.device, strength
    r = lambda *s: torch.rand(*s, device=dev, generator=gen)  # noqa: E731
    scale = 1 + k * (0.2 * r(b) - 0.1)
    ang = (r(b) * 2 - 1) * math.radians(10) * k
    tx = (r(b) * 2 - 1) * 0.1 * k * 48
    ty = (r(b) * 2 - 1) * 0.1 * k * 48
    flip = torch.where(r(b) < 0.5, -1.0, 1.0)
    gain = (1 + k * (0.5 * r(b) - 0.25))[:, None, None, None]
    bias = ((r(b) * 2 - 1) * 0.12 * k)[:, None, None, None]
    c = 23.5
    cs, sn = torch.cos(ang) / scale, torch.sin(ang) / scale
    # Pixel p <-> normalised (p - c) / c with align_corners=True; src = R (flip * dst) + c - t.
    theta = torch.stack([torch.stack([cs * flip, -sn, -tx / c], 1), torch.stack([sn * flip, cs, -ty / c], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    x = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=True)
    mean = x.mean((1, 2, 3), keepdim=True)
    return ((x - mean) * gain + mean + bias).clamp(0, 1)


def load_teacher(path, keys, classes):
    doc = json.load(open(path))
    if doc.get('format') != 'tinyfer-teacher-scores':
        raise SystemExit(f'{path}: not a TinyFER teacher scores file')
    table = doc['scores']
    missing = [k for k in keys if k not in table]
    if missing:
        raise SystemExit(f'{path}: no scores for {len(missing)} training faces (first {missing[0]})')
    return np.asarray([table[k] for k in keys], np.float32).reshape(len(keys), classes)


def smoothed(labels, classes):
    """The training targets before any teacher: one-hot with label smoothing (train.ts)."""
    return F.one_hot(labels, classes).float() * (1 - SMOOTHING) + SMOOTHING / classes


def soft_cross_entropy(logits, target):
    """categoricalCrossentropy on softmax outputs, as model.compile uses it (mean over the batch)."""
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


@torch.no_grad()
def accuracy(model, faces, labels, batch=4096):
    model.eval()
    right = 0
    for i in range(0, len(faces), batch):
        right += (model(faces[i:i + batch]).argmax(1) == labels[i:i + batch]).sum().item()
    return right / len(faces)


@torch.no_grad()
def report(model, faces, labels, classes=7, batch=4096):
    """(accuracy, macro-F1, per-class recall list) with one view."""
    model.eval()
    return metrics(torch.cat([model(faces[i:i + batch]).argmax(1) for i in range(0, len(faces), batch)]), labels, classes)


def metrics(pred, labels, classes=7):
    """(accuracy, macro-F1, per-class recall list) of predicted classes."""
    cm = torch.zeros(classes, classes, dtype=torch.int64, device=labels.device)
    cm.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    cm = cm.cpu().numpy().astype(np.float64)
    tp = np.diag(cm)
    recall = tp / np.maximum(1, cm.sum(1))
    precision = tp / np.maximum(1, cm.sum(0))
    f1 = np.where(recall + precision > 0, 2 * recall * precision / np.maximum(1e-12, recall + precision), 0)
    return tp.sum() / cm.sum(), float(f1.mean()), recall.tolist()


@torch.no_grad()
def scores(model, faces, batch=4096):
    model.eval()
    return torch.cat([F.softmax(model(faces[i:i + batch]), 1) for i in range(0, len(faces), batch)])


def write_teacher_scores(model, file, keys, x, y, note, log):
    """--write-scores: the init's scores on the training faces, each the mean of the face and its
    mirror image, as a teacher file (--teacher reads it; the format of teacher.py's)."""
    s = ((scores(model, x) + scores(model, torch.flip(x, [3]))) / 2).cpu().numpy()
    acc = float((s.argmax(1) == y).mean())
    with open(file, 'w') as f:
        json.dump({'format': 'tinyfer-teacher-scores', 'model': note, 'scores': {k: [float(v) for v in r] for k, r in zip(keys, s)}}, f)
    log(f'{file}: scores of {note} on {len(keys)} training faces (face + mirror); its training accuracy {acc * 100:.2f} %')


def check_scores(model, file, tkeys, xt, tyt, log):
    """--check: the forward pass (inference) against a tfjs scores file (check.js)."""
    ref = json.load(open(file))
    pick = [tkeys.index(k) for k in ref['keys']]
    got = scores(model, xt[pick]).cpu().numpy()
    want = np.asarray(ref['scores'], np.float32)
    diff = np.abs(got - want).max(1)
    same = (got.argmax(1) == want.argmax(1)).mean()
    log(f'check against {file}: {len(pick)} faces, same top class {same * 100:.2f} %, '
        f'max |score difference| {diff.max():.2e}, median {np.median(diff):.2e}, accuracy here {accuracy(model, xt, tyt) * 100:.2f} %')


def check_grad(model, file, tkeys, xt, tyt, classes, log):
    """--check-grad: one step's loss and gradients against a tfjs file (check.js --grad), dropout off."""
    ref = json.load(open(file))
    pick = torch.tensor([tkeys.index(k) for k in ref['keys']], device=xt.device)
    model.train(ref.get('mode') == 'training')
    model.dropout = 0
    logits = model(xt[pick])
    loss = soft_cross_entropy(logits, smoothed(tyt[pick], classes))
    loss.backward()
    rows = np.abs(F.softmax(logits, 1).detach().cpu().numpy() - np.asarray(ref['probs'], np.float32).reshape(-1, classes)).max(1)
    worst, rels = (0.0, ''), []
    for name, want in ref['grads'].items():
        got = model.w(name).grad.detach().cpu().numpy().ravel()
        want = np.asarray(want, np.float32)
        rel = float(np.abs(got - want).max() / max(1e-12, np.abs(want).max()))
        worst = max(worst, (rel, name))
        rels.append(rel)
    log(f'check-grad against {file}: {len(pick)} faces, loss {loss.item():.6f} here, {ref["loss"]:.6f} in tfjs; '
        f'{ref.get("mode")} mode; scores apart by > 1e-4 on {(rows > 1e-4).sum()} of {len(rows)} faces (largest {rows.max():.1e}); '
        f'{len(ref["grads"])} gradients, largest difference {worst[0]:.2e} of the gradient\'s largest entry ({worst[1]}), median over the weights {np.median(rels):.2e}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pack', default='.gpu/fer2013.pack')
    ap.add_argument('--init', required=True, help='tfjs model folder: the architecture, and the start unless --reinit '
                    '(with --topology: only whether it is a float twin)')
    ap.add_argument('--reinit', action='store_true', help='fresh random weights of the init\'s architecture')
    ap.add_argument('--teacher', help='teacher scores file (tinyfer train --teacher)')
    ap.add_argument('--distill', type=float, default=0.6)
    ap.add_argument('--out', required=True)
    ap.add_argument('--seconds', type=float, default=0, help='training wall time (the schedule follows it)')
    ap.add_argument('--epochs', type=int, default=100, help='epochs when --seconds is 0')
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--augment', type=float, default=1.0)
    ap.add_argument('--dropout', type=float, default=0.05)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--class-weight', type=float, default=0, help='loss weight of each class (its share of the '
                    'training faces)^-P, scaled to a mean of 1 per face: 0 none, 1 fully balanced')
    ap.add_argument('--stage1', choices=['real-act', 'real-weights'], help='two-stage training: the first '
                    '--stage1-frac of the time with real activations (clipped to [-1, 1]) or real weights, '
                    'then both binary; each stage has its own warm-up + cosine')
    ap.add_argument('--stage1-frac', type=float, default=0.4)
    ap.add_argument('--teacher-wait', action='store_true', help='if --teacher does not exist yet, train on the '
                    'labels alone and take the teacher from the first epoch after it appears')
    ap.add_argument('--binary', action='store_true', help='train the binary network from a float twin\'s weights '
                    '(--init is the float twin\'s folder; the results are binary model folders)')
    ap.add_argument('--stem-int8', action='store_true', help='train the stem conv through its int8 grid per output '
                    'channel (straight-through) and save it there: the ESP32-S3\'s integer stem (issue 17)')
    ap.add_argument('--topology', help='experimental, a network the TypeScript side does not build yet (its weights '
                    'are written as .npz): WIDTHS:DEPTHS[:nopool], e.g. 16,32,56:1,2,2:nopool (nopool: no max-pool '
                    'after the stem, the first stage at 48x48), from fresh weights; binary or float twin as the init')
    ap.add_argument('--head-grid', type=int, default=0, help='experimental: a spatial head over a G x G grid of '
                    'regions instead of global average pooling (TinyFer.grid_head; weights written as .npz)')
    ap.add_argument('--head-k', type=int, default=8, help='--head-grid: channels after its 1x1 reduce')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--cache', help='decoded faces (.npz): read if present, else written after decoding the pack')
    ap.add_argument('--limit', type=int, default=0, help='only N faces of each split (a check)')
    ap.add_argument('--write-scores', help='write the init\'s scores on the training faces (face + mirror) as a teacher '
                    'file for --teacher, and stop')
    ap.add_argument('--check-grad', help='compare one training step\'s loss and gradients with a tfjs file (check.js --grad) and stop')
    ap.add_argument('--check', help='compare the forward pass with a tfjs scores file (check.js) and stop')
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    log = run_log(args.out, 'student.log')

    meta, init = read_tfjs(args.init)
    arch, float_twin = model_arch(meta)
    if args.binary:
        if not float_twin:
            raise SystemExit(f'--binary: {args.init} is a binary network already')
        meta, float_twin = binary_meta(meta), False
        arch = model_arch(meta)[0]
    if float_twin and args.stage1:
        raise SystemExit('--stage1 is for binary models; the init is a float twin')
    if arch not in ARCHS and not args.topology:
        raise SystemExit(f'{args.init}: model {arch} is not a binary TinyFER architecture ({", ".join(ARCHS)})')
    stages, stem_pool = arch, True
    if args.topology:
        parts = args.topology.split(':')
        try:
            stages = ([int(v) for v in parts[0].split(',')], [int(v) for v in parts[1].split(',')], False)
        except (ValueError, IndexError):
            raise SystemExit(f'--topology {args.topology}: expected WIDTHS:DEPTHS[:nopool], e.g. 16,32,56:1,2,2:nopool')
        if len(stages[0]) != len(stages[1]) or parts[2:] not in ([], ['nopool']):
            raise SystemExit(f'--topology {args.topology}: one depth per width, and only ":nopool" after them')
        if min(stages[1][1:], default=1) < 1 or stages[1][0] < 0:
            raise SystemExit(f'--topology {args.topology}: only the first stage may have depth 0 (the stem alone)')
        stem_pool = parts[2:] != ['nopool']
        arch = f'topology {args.topology}'
        init, args.reinit = topology_weights(*stages[:2]), True
    if args.reinit:
        init = fresh_weights(init, np.random.RandomState(args.seed))
    model = TinyFer(stages, init, dropout=args.dropout, float_twin=float_twin, stem_pool=stem_pool).to(dev)
    model.stem_int8 = args.stem_int8
    model.head_grid = HEAD_GRIDS.get(arch, 0)
    if args.head_grid and model.head_grid:
        raise SystemExit(f'--head-grid: {args.init} ({arch}) has a grid head already')
    if args.head_grid:
        model.grid_head(args.head_grid, args.head_k, args.reinit, np.random.RandomState(args.seed + 1))

    t0 = time.time()
    cache = args.cache
    if cache and os.path.exists(cache) and not args.limit:
        z = np.load(cache, allow_pickle=False)
        keys, y, faces = list(z['keys']), z['y'], z['faces']
        tkeys, ty, tfaces = list(z['tkeys']), z['ty'], z['tfaces']
    else:
        _, splits = read_pack(args.pack, args.limit)
        keys, y, faces = splits['Training']
        tkeys, ty, tfaces = splits['PublicTest']
        if cache and not args.limit:
            np.savez(cache, keys=np.asarray(keys), y=y, faces=faces, tkeys=np.asarray(tkeys), ty=ty, tfaces=tfaces)
    to_dev = lambda a: torch.from_numpy(a).to(dev).float().div(255).unsqueeze(1)  # noqa: E731
    x, xt = to_dev(faces), to_dev(tfaces)
    yt, tyt = torch.from_numpy(y.astype(np.int64)).to(dev), torch.from_numpy(ty.astype(np.int64)).to(dev)
    n, classes = len(keys), 7
    calib = x[torch.from_numpy(np.floor(np.arange(min(2048, n)) * n / min(2048, n)).astype(np.int64)).to(dev)]
    gpu = torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu'
    log(f'{arch}{" float twin" if float_twin else ""} from {args.init}{" (fresh weights)" if args.reinit else ""}: {sum(p.numel() for p in model.p.values())} parameters '
        f'(+ {sum(b.numel() for b in model.buffers())} BatchNorm statistics); '
        f'Training {n}, PublicTest {len(tkeys)} faces in {time.time() - t0:.1f} s; {gpu}, torch {torch.__version__}; {vars(args)}')

    if args.check:
        return check_scores(model, args.check, tkeys, xt, tyt, log)
    if args.write_scores:
        return write_teacher_scores(model, args.write_scores, keys, x, y, f'{arch}{" float twin" if float_twin else ""} {args.init}', log)
    if args.check_grad:
        return check_grad(model, args.check_grad, tkeys, xt, tyt, classes, log)

    hard = smoothed(yt, classes)
    target = hard
    teacher_pending = False

    def take_teacher():
        soft = torch.from_numpy(load_teacher(args.teacher, keys, classes)).to(dev)
        return hard * (1 - args.distill) + soft * args.distill
    if args.teacher:
        if args.teacher_wait and not os.path.exists(args.teacher):
            teacher_pending = True
            log(f'teacher {args.teacher} not there yet: labels alone until it is')
        else:
            target = take_teacher()
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    cw = (counts / counts.sum()) ** -args.class_weight if args.class_weight else np.ones(classes)
    cw = cw / (cw * counts).sum() * counts.sum()  # mean weight over the training faces: 1
    face_w = torch.from_numpy(cw.astype(np.float32)).to(dev)[yt]
    if args.class_weight:
        log('class weights ' + ' '.join(f'{v:.2f}' for v in cw))
    stage = 1 if args.stage1 else 2
    model.real_act = stage == 1 and args.stage1 == 'real-act'
    model.real_weights = stage == 1 and args.stage1 == 'real-weights'
    best_f1 = -1.0

    def evaluate(tag):
        a, f1, rec = report(model, xt, tyt, classes)
        return a, f1, f'PublicTest {a * 100:.2f} % macro-F1 {f1 * 100:.1f} recall ' + ' '.join(f'{LABELS[c][:3]} {r * 100:.0f}' for c, r in enumerate(rec))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-7, fused=dev.type == 'cuda')
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    model.recalibrate(calib)
    best, _, text = evaluate('start')
    if stage == 1:
        best = 0.0  # stage 1 is not a binary model: nothing of it is written as best
    log(f'start: {text} (one view, BatchNorm re-estimated{", stage 1: " + args.stage1 if stage == 1 else ""})')
    write_tfjs(os.path.join(args.out, 'best'), meta, model.tfjs_weights(), f'student.py {arch} start')
    best_epoch = 0
    epoch, step = 0, 0
    t1 = time.time()
    steps_per_epoch = n // args.batch
    total_steps = args.epochs * steps_per_epoch
    done = False
    while not done:
        model.train()
        perm = torch.randperm(n, device=dev, generator=gen)
        loss_sum = torch.zeros((), device=dev)
        right = torch.zeros((), device=dev)
        seen, partial, switch_now = 0, False, False
        for i in range(steps_per_epoch):
            frac = (time.time() - t1) / args.seconds if args.seconds else step / total_steps
            if frac >= 1:
                done = partial = True
                break
            if args.stage1:  # each stage its own schedule
                s1 = args.stage1_frac
                if stage == 1 and frac >= s1:
                    switch_now = partial = True
                    break
                frac = frac / s1 if stage == 1 else (frac - s1) / (1 - s1)
            warm = 0.03
            lr = args.lr * (frac / warm if frac < warm else 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm))))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = perm[i * args.batch:(i + 1) * args.batch]
            xb = augment(x[idx], gen, args.augment) if args.augment > 0 else x[idx]
            logits = model(xb)
            loss = -(face_w[idx] * (target[idx] * F.log_softmax(logits, 1)).sum(1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(idx)
            loss_sum += loss.detach() * len(idx)
            right += (logits.argmax(1) == target[idx].argmax(1)).sum()
        else:
            epoch += 1
            if not args.seconds and epoch >= args.epochs:
                done = True
        if switch_now:
            if seen:
                model.recalibrate(calib)
                _, _, text = evaluate('stage1')
                log(f'epoch {epoch} + part {time.time() - t1:.0f} s stage 1 ({args.stage1}) lr {lr:.2e} loss {loss_sum.item() / seen:.4f} {text}')
            stage, model.real_act, model.real_weights = 2, False, False
            model.recalibrate(calib)
            _, _, text = evaluate('switch')
            log(f'stage 2 starts (both binary): {text}')
            continue
        if seen == 0:
            break
        model.recalibrate(calib)
        acc, f1, text = evaluate('epoch')
        mark = ''
        if stage == 2 and acc > best:
            best, best_epoch, mark = acc, epoch, ' *best'
            write_tfjs(os.path.join(args.out, 'best'), meta, model.tfjs_weights(),
                       f'student.py {arch}{" float twin" if float_twin else ""} epoch {epoch} lr {args.lr} seed {args.seed}')
        if stage == 2 and f1 > best_f1:
            best_f1 = f1
            mark += ' *best-f1'
            write_tfjs(os.path.join(args.out, 'best-f1'), meta, model.tfjs_weights(),
                       f'student.py {arch}{" float twin" if float_twin else ""} epoch {epoch} (best macro-F1) lr {args.lr} seed {args.seed}')
        log(f'epoch {epoch}{" + part" if partial else ""} {time.time() - t1:.0f} s lr {lr:.2e} loss {loss_sum.item() / seen:.4f} '
            f'acc {right.item() / seen:.4f} {"stage 1 (" + args.stage1 + ") " if stage == 1 else ""}{text}{mark}')
        if teacher_pending and os.path.exists(args.teacher):
            try:
                target = take_teacher()
                teacher_pending = False
                log(f'teacher {args.teacher} taken from epoch {epoch + 1} on (distill {args.distill})')
            except (ValueError, OSError, SystemExit) as e:  # still being written
                log(f'teacher {args.teacher} not readable yet ({str(e)[:80]})')
    write_tfjs(os.path.join(args.out, 'last'), meta, model.tfjs_weights(), f'student.py {arch} last, {epoch} epochs')
    log(f'done: {epoch} epochs, {step} steps in {time.time() - t1:.0f} s; best PublicTest {best * 100:.2f} % (epoch {best_epoch})')


if __name__ == '__main__':
    main()
