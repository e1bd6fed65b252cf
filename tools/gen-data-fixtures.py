#!/usr/bin/python3
"""Reference fixtures for src/data (pyrandom, few-shot sampling, Dassl pickles).

Run with the system CPython (its `random` module is the reference):
    /usr/bin/python3 tools/gen-data-fixtures.py
Writes test/fixtures/data/. The tests never run Python; they read these files.

The few-shot logic below is a plain-Python transcription of Dassl.pytorch's
DatasetBase.generate_fewshot_dataset / split_dataset_by_label and CoOp's
OxfordPets.subsample_classes and DescribableTextures.read_and_split_data
(same call order, same random calls), operating on (path, label, classname) tuples.
"""
import json
import math
import os
import pickle
import random
import sys
import types
from collections import defaultdict

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'data')
os.makedirs(OUT, exist_ok=True)


def dump(name, obj):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(obj, f, indent=None, separators=(',', ':'))
        f.write('\n')


def big(v):
    """Ints beyond 2^53 as strings (JSON numbers would lose them in JS)."""
    return v if abs(v) <= 2 ** 53 else str(v)


# --------------------------------------------------------------------------------------------
# 1. pyrandom: a scripted call sequence per seed, replayed in order by the TS test.

def sample_uses_pool(n, k):
    setsize = 21
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))
    return n <= setsize


def run_script(r, script):
    out = []
    for call in script:
        op = call[0]
        if op == 'u32':
            out.append([r.getrandbits(32) for _ in range(call[1])])
        elif op == 'random':
            out.append([r.random() for _ in range(call[1])])
        elif op == 'getrandbits':
            out.append(big(r.getrandbits(call[1])))
        elif op == 'randrange':
            out.append(r.randrange(*call[1:]))
        elif op == 'randint':
            out.append(r.randint(call[1], call[2]))
        elif op == 'sample':
            out.append(r.sample(range(call[1]), call[2]))
        elif op == 'shuffle':
            x = list(range(call[1]))
            r.shuffle(x)
            out.append(x)
        elif op == 'choice':
            out.append(r.choice(range(call[1])))
        elif op == 'choices':
            out.append(r.choices(range(call[1]), k=call[2]))
        elif op == 'uniform':
            out.append(r.uniform(call[1], call[2]))
        else:
            raise ValueError(op)
    return out


SAMPLE_NS = [1, 2, 5, 16, 20, 21, 22, 50, 84, 85, 86, 100, 276, 277, 278, 1000, 5000]
SAMPLE_KS = [0, 1, 2, 4, 5, 6, 8, 16, 22, 50]
sample_pairs = [(n, k) for n in SAMPLE_NS for k in SAMPLE_KS if k <= n]

script = [
    ['u32', 8],
    ['random', 6],
] + [['getrandbits', k] for k in [0, 1, 5, 31, 32, 33, 53, 64, 100]] + [
    ['randrange', 10], ['randrange', 1], ['randrange', 2 ** 31], ['randrange', 2 ** 32 + 5],
    ['randrange', 2 ** 53 - 1], ['randrange', 3, 17], ['randrange', 0, 100, 7], ['randrange', 50, 0, -3],
    ['randint', 1, 6], ['randint', -5, 5],
] + [['sample', n, k] for (n, k) in sample_pairs] + [
    ['shuffle', n] for n in [0, 1, 2, 10, 37, 100]
] + [
    ['choice', 1], ['choice', 7], ['choice', 1000],
    ['choices', 7, 10], ['choices', 1, 3],
    ['uniform', -2.5, 3.0],
    ['u32', 4],
]

seeds = [0, 1, 2, 3, 42, 12345, -7, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 + 1, 2 ** 64 + 7, 10 ** 30]
cases = []
for s in seeds:
    r = random.Random(s)
    state0 = list(r.getstate()[1])
    results = run_script(r, script)
    cases.append({
        'seed': big(s),
        'state0_head': state0[:8], 'state0_index': state0[624],
        'results': results,
        'state_end': list(r.getstate()[1]) if s in (1, 2 ** 64 + 7) else None,
    })

dump('pyrandom.json', {
    'python': sys.version.split()[0],
    'script': script,
    'sample_branch': [[n, k, sample_uses_pool(n, k)] for (n, k) in sample_pairs]
                     + [[n, k, sample_uses_pool(n, k)] for (n, k) in
                        [(85, 16), (86, 16), (277, 22), (278, 22), (1045, 86), (1046, 86)]],
    'cases': cases,
})

# --------------------------------------------------------------------------------------------
# 2. Few-shot: Dassl's algorithm on a synthetic split with uneven class sizes.


def split_dataset_by_label(data_source):
    output = defaultdict(list)
    for item in data_source:
        output[item[1]].append(item)
    return output


def generate_fewshot_dataset(data_source, num_shots=-1, repeat=False):
    if num_shots < 1:
        return data_source
    tracker = split_dataset_by_label(data_source)
    dataset = []
    for label, items in tracker.items():
        if len(items) >= num_shots:
            sampled_items = random.sample(items, num_shots)
        else:
            if repeat:
                sampled_items = random.choices(items, k=num_shots)
            else:
                sampled_items = items
        dataset.extend(sampled_items)
    return dataset


def subsample_classes(*args, subsample='all'):
    if subsample == 'all':
        return args
    labels = sorted(set(item[1] for item in args[0]))
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == 'base' else labels[m:]
    relabeler = {y: y_new for y_new, y in enumerate(selected)}
    return [[(p, relabeler[y], c) for (p, y, c) in ds if y in selected] for ds in args]


# 37 classes with uneven train counts: a few classes smaller than 16 (the fewer-than-K rule),
# several around the sample() pool/set threshold (85 for k=16), one large class.
NUM_CLASSES = 37
train_counts = [3, 10, 16, 17, 20, 21, 22, 40, 84, 85, 86, 100, 300, 1, 15, 30, 33, 25, 18, 19,
                24, 26, 27, 28, 29, 31, 32, 34, 35, 36, 37, 38, 39, 41, 42, 43, 44]
val_counts = [1, 3, 4, 5, 6, 2, 8, 9, 10, 11, 12, 13, 14, 4, 4, 5, 6, 7, 8, 9,
              10, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
test_counts = [2 + (i % 5) for i in range(NUM_CLASSES)]
assert len(train_counts) == NUM_CLASSES and len(val_counts) == NUM_CLASSES
classnames = ['class_%02d_%s' % (i, ['abyssinian', 'great_pyrenees', 'shiba_inu', 'pug'][i % 4])
              for i in range(NUM_CLASSES)]

gen = random.Random(2024)  # only builds the synthetic listing; independent of the sampling seeds


def make_split(counts, tag):
    items = []
    for y, n in enumerate(counts):
        for i in range(n):
            items.append(('c%02d/%s%d.jpg' % (y, tag, i), y, classnames[y]))
    # Interleave classes so "order of first appearance" differs from label order.
    gen.shuffle(items)
    return items


split = {'train': make_split(train_counts, 'tr'), 'val': make_split(val_counts, 'va'),
         'test': make_split(test_counts, 'te')}
with open(os.path.join(OUT, 'split_zhou_Synth37.json'), 'w') as f:
    json.dump({k: [list(t) for t in v] for k, v in split.items()}, f)
    f.write('\n')

fewshot = []
for repeat in (False, True):
    for seed in (1, 2, 3):
        for K in (1, 2, 4, 8, 16):
            random.seed(seed)  # Dassl: set_random_seed(cfg.SEED) -> random.seed(seed)
            tr = generate_fewshot_dataset(split['train'], num_shots=K, repeat=repeat)
            va = generate_fewshot_dataset(split['val'], num_shots=min(K, 4), repeat=repeat)
            fewshot.append({'repeat': repeat, 'seed': seed, 'shots': K,
                            'train': [p for (p, _, _) in tr], 'val': [p for (p, _, _) in va]})

# Base-to-novel (CoOp order): few-shot over all classes, then subsample.
b2n = []
for seed in (1, 2, 3):
    random.seed(seed)
    tr = generate_fewshot_dataset(split['train'], num_shots=16)
    va = generate_fewshot_dataset(split['val'], num_shots=4)
    for sub in ('base', 'new'):
        t2, v2, te2 = subsample_classes(tr, va, split['test'], subsample=sub)
        b2n.append({'seed': seed, 'subsample': sub,
                    'train': [[p, y] for (p, y, _) in t2], 'val': [[p, y] for (p, y, _) in v2],
                    'test': [[p, y] for (p, y, _) in te2]})

# ProLIP order: subsample in the dataset constructor, then random.seed(seed), then train K and
# val K shots (not min(K, 4)).
prolip = []
for sub in ('all', 'base'):
    t0, v0, _ = subsample_classes(split['train'], split['val'], split['test'], subsample=sub)
    for seed in (1, 2):
        for K in (4, 16):
            random.seed(seed)
            tr = generate_fewshot_dataset(t0, num_shots=K)
            va = generate_fewshot_dataset(v0, num_shots=K)
            prolip.append({'subsample': sub, 'seed': seed, 'shots': K,
                           'train': [[p, y] for (p, y, _) in tr], 'val': [[p, y] for (p, y, _) in va]})

# ProLIP's ImageNet: per label (first appearance), sample 2K, first K train, last K val.
pin = []
for seed in (1, 3):
    for K in (1, 4, 16):
        random.seed(seed)
        t, v = [], []
        big_classes = [x for x in split['train'] if train_counts[x[1]] >= 32]
        for label, items in split_dataset_by_label(big_classes).items():
            s = random.sample(items, K * 2)
            t += s[:K]
            v += s[K:]
        pin.append({'seed': seed, 'shots': K, 'train': [p for (p, _, _) in t], 'val': [p for (p, _, _) in v]})

# read_and_split_data (when no split JSON exists): per sorted category, random.shuffle the
# listing, n_train = round(n*0.5), n_val = round(n*0.2) (round half to even), rest test.
listing = {}
for y, c in enumerate(['cat', 'dog', 'eel', 'fox', 'gnu', 'hen']):
    n = [4, 5, 7, 10, 13, 25][y]
    names = ['%s_%03d.jpg' % (c, i) for i in range(n)]
    gen.shuffle(names)  # a stand-in for os.listdir order
    listing[c] = names


def read_and_split_data(listing, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None):
    categories = sorted(c for c in listing if c not in ignored)
    train, val, test = [], [], []
    for label, category in enumerate(categories):
        images = [category + '/' + im for im in listing[category]]
        random.shuffle(images)
        n_total = len(images)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        n_test = n_total - n_train - n_val
        assert n_train > 0 and n_val > 0 and n_test > 0
        if new_cnames is not None and category in new_cnames:
            category = new_cnames[category]
        train += [(im, label, category) for im in images[:n_train]]
        val += [(im, label, category) for im in images[n_train:n_train + n_val]]
        test += [(im, label, category) for im in images[n_train + n_val:]]
    return train, val, test


random.seed(1)
rs = read_and_split_data(listing, new_cnames={'gnu': 'wildebeest'})
rs_then_fewshot = generate_fewshot_dataset(rs[0], num_shots=2)

dump('fewshot-synth37.json', {
    'python': sys.version.split()[0],
    'fewshot': fewshot,
    'base_to_novel': b2n,
    'prolip': prolip,
    'prolip_imagenet': pin,
    'read_and_split': {'listing': listing, 'seed': 1, 'new_cnames': {'gnu': 'wildebeest'},
                       'train': [list(t) for t in rs[0]], 'val': [list(t) for t in rs[1]],
                       'test': [list(t) for t in rs[2]],
                       'then_fewshot_2': [p for (p, _, _) in rs_then_fewshot]},
})

# --------------------------------------------------------------------------------------------
# 3. A Dassl few-shot cache (split_fewshot/shot_4-seed_1.pkl) as CoOp writes it: a dict of
#    Datum lists pickled with the highest protocol. Datum is recreated under its real module
#    name so the pickle names `dassl.data.datasets.base_dataset.Datum`.

mod_names = ['dassl', 'dassl.data', 'dassl.data.datasets', 'dassl.data.datasets.base_dataset']
for name in mod_names:
    sys.modules.setdefault(name, types.ModuleType(name))
base_mod = sys.modules['dassl.data.datasets.base_dataset']


class Datum:
    def __init__(self, impath='', label=0, domain=0, classname=''):
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname


Datum.__module__ = 'dassl.data.datasets.base_dataset'
Datum.__qualname__ = 'Datum'
base_mod.Datum = Datum

IMAGE_DIR = '/home/someone/data/synth37/images'
random.seed(1)
tr = generate_fewshot_dataset(split['train'], num_shots=4)
va = generate_fewshot_dataset(split['val'], num_shots=4)
data = {'train': [Datum(IMAGE_DIR + '/' + p, y, 0, c) for (p, y, c) in tr],
        'val': [Datum(IMAGE_DIR + '/' + p, y, 0, c) for (p, y, c) in va]}
with open(os.path.join(OUT, 'shot_4-seed_1.pkl'), 'wb') as f:
    pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
with open(os.path.join(OUT, 'shot_4-seed_1.proto2.pkl'), 'wb') as f:
    pickle.dump(data, f, protocol=2)

# CoOp's ImageNet preprocessed.pkl: {"train": [...], "test": [...]} in the order CoOp listed the
# folders (sorted wnids, files in os.listdir order) on the machine that wrote it.
IN_DIR = '/home/someone/data/imagenet/images'
in_train = [('n01440764', 'x2.JPEG'), ('n01440764', 'x1.JPEG'), ('n01443537', 'y3.JPEG'), ('n01443537', 'y1.JPEG'),
            ('n01443537', 'y2.JPEG')]
in_test = [('n01440764', 'v1.JPEG'), ('n01443537', 'v2.JPEG')]
in_names = {'n01440764': 'tench', 'n01443537': 'goldfish'}
in_labels = {'n01440764': 0, 'n01443537': 1}
pre = {'train': [Datum('%s/train/%s/%s' % (IN_DIR, w, f), in_labels[w], 0, in_names[w]) for (w, f) in in_train],
       'test': [Datum('%s/val/%s/%s' % (IN_DIR, w, f), in_labels[w], 0, in_names[w]) for (w, f) in in_test]}
with open(os.path.join(OUT, 'imagenet-preprocessed.pkl'), 'wb') as f:
    pickle.dump(pre, f, protocol=pickle.HIGHEST_PROTOCOL)

print('wrote', OUT)
