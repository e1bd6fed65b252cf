# Prints the torch reference numbers pasted into test/nn/optim.test.ts and test/nn/schedule.test.ts.
# Run with Debian's torch: /usr/bin/python3 tools/optim_torch_reference.py  (torch 1.13.1 on CPU,
# single-tensor code paths). Inputs are dyadic so the JS tests rebuild them exactly.
import json, math
import torch

torch.set_default_dtype(torch.float32)

P0 = [0.5, -1.25, 2.0, 0.75, -0.125]
P1 = [[0.375, -0.625, 1.125], [0.875, -0.25, 0.0625]]

def grad(t, idx, n):
    # g[t][i] = ((7*i + 3*t + 5*idx) % 11 - 5) / 8
    return [((7 * i + 3 * t + 5 * idx) % 11 - 5) / 8 for i in range(n)]

def run(make, steps=4, skip=None):
    ps = [torch.tensor(P0), torch.tensor(P1)]
    for p in ps:
        p.requires_grad_(True)
    opt = make(ps)
    out = []
    for t in range(steps):
        for idx, p in enumerate(ps):
            if skip and (t, idx) in skip:
                p.grad = None
            else:
                p.grad = torch.tensor(grad(t, idx, p.numel())).reshape(p.shape)
        opt.step()
        out.append([p.detach().flatten().tolist() for p in ps])
    return out

cases = {
    'sgd_dassl': lambda ps: torch.optim.SGD(ps, lr=0.002, momentum=0.9, weight_decay=5e-4),
    'sgd_nesterov': lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True),
    'sgd_dampening': lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.25, weight_decay=0),
    'sgd_plain': lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0, weight_decay=0.1),
    'adam_default': lambda ps: torch.optim.Adam(ps, lr=1e-3),
    'adam_eps_wd': lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1e-4, weight_decay=0.1),
    'adam_amsgrad': lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.9), amsgrad=True),
    'adamw': lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.01),
    'adamw_amsgrad': lambda ps: torch.optim.AdamW(ps, lr=5e-2, weight_decay=0.5, amsgrad=True),
}
res = {k: run(v) for k, v in cases.items()}
res['adam_skip'] = run(lambda ps: torch.optim.Adam(ps, lr=1e-2), skip={(1, 1)})
res['sgd_skip'] = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4), skip={(0, 1), (2, 0)})

clip = {}
for name, max_norm, nt in [('clip2', 1.0, 2.0), ('noclip2', 100.0, 2.0), ('clipinf', 0.5, math.inf), ('clip1', 2.0, 1.0)]:
    gs = [torch.tensor(grad(0, 0, 5)), torch.tensor(grad(1, 1, 6)).reshape(2, 3)]
    ps = [torch.zeros(5, requires_grad=True), torch.zeros(2, 3, requires_grad=True)]
    for p, g in zip(ps, gs):
        p.grad = g
    n = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=nt)
    clip[name] = {'norm': n.item(), 'grads': [p.grad.flatten().tolist() for p in ps]}
res['clip'] = clip

# Dassl.pytorch dassl/optim/lr_scheduler.py, same logic (wrapper over torch's CosineAnnealingLR).
from torch.optim.lr_scheduler import _LRScheduler, CosineAnnealingLR

class _BaseWarmup(_LRScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, last_epoch=-1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)
    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)

class ConstantWarmup(_BaseWarmup):
    def __init__(self, optimizer, successor, warmup_epoch, cons_lr):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch)
    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]

class LinearWarmup(_BaseWarmup):
    def __init__(self, optimizer, successor, warmup_epoch, min_lr):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch)
    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]

def dassl(base, max_epoch, warmup_epoch, wtype='constant', wlr=1e-5, recount=True):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    s = CosineAnnealingLR(opt, float(max_epoch))
    if warmup_epoch > 0:
        if not recount:
            s.last_epoch = warmup_epoch
        s = ConstantWarmup(opt, s, warmup_epoch, wlr) if wtype == 'constant' else LinearWarmup(opt, s, warmup_epoch, wlr)
    lrs = []
    for _ in range(max_epoch):
        lrs.append(opt.param_groups[0]['lr'])
        s.step()  # Dassl steps the scheduler after each epoch
    return lrs

res['dassl'] = {
    'e5_w1_const': dassl(0.0035, 5, 1),
    'e10_w3_const': dassl(0.002, 10, 3, 'constant', 1e-4),
    'e10_w3_linear': dassl(0.002, 10, 3, 'linear', 1e-5),
    'e8_w2_norecount': dassl(0.01, 8, 2, 'constant', 1e-5, recount=False),
    'e6_w0': dassl(0.005, 6, 0),
}

def per_step(base, t_max, n, eta_min=0.0):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    s = CosineAnnealingLR(opt, t_max, eta_min=eta_min)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        s.step()
    return lrs

res['cosine_steps'] = {'t300': per_step(1e-5, 300, 300), 't7_min': per_step(0.1, 7, 7, 1e-3)}
print(json.dumps(res))
