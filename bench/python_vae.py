#!/usr/bin/python3
"""The Python peer of vaerepro's training step, as a PyTorch user writes it.

The model, loss and loop follow pytorch/examples' vae/main.py (fc1, fc21,
fc22, fc3, fc4; a sigmoid decoder with F.binary_cross_entropy summed over the
batch plus the analytic KL; `train_loss += loss.item()` every step; a
DataLoader with shuffle=True), with the widths, activation, optimizer and
batch size of the configuration asked for. The data is Fashion-MNIST read
from the same Debian files the C++ suite reads, dynamically binarised (a fresh
torch.bernoulli of each batch, as the suite's `binarized` protocol).

Variants (what `bench-train` times; one variant per process, so that torch's
default thread count is what a user gets):
  default  the loop above, torch's default threads (1 on Debian's build here)
  threads  the same, torch.set_num_threads(cores this process may use)
  tuned    threads set, glibc malloc thresholds raised through ctypes, the
           data indexed in memory once per batch (no DataLoader), logits with
           binary_cross_entropy_with_logits, zero_grad(set_to_none=True), the
           optimizer's foreach implementation, no .item() per step

--device cuda runs the same loops on the GPU (the default one moves each
batch there, as pytorch/examples does; the tuned one keeps the data there),
each timing ended by torch.cuda.synchronize().

Prints one JSON object on stdout: samples/s of every repeat and the
environment. Run with Debian's python3-torch (scripts/deps.sh --bench).
"""

import argparse
import ctypes
import gzip
import json
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = {
    # Kingma & Welling 2013 section 5: 784-500-20, tanh, Adagrad 0.02, M = 100.
    "kw": dict(hidden=500, latent=20, act="tanh", opt="adagrad", lr=0.02, batch=100),
    # pytorch/examples vae/main.py: 784-400-20, ReLU, Adam 1e-3, batch 128.
    "examples": dict(hidden=400, latent=20, act="relu", opt="adam", lr=1e-3, batch=128),
    # Chapter 2's small model: 784-100-3, tanh, Adagrad 0.02, M = 100.
    "small": dict(hidden=100, latent=3, act="tanh", opt="adagrad", lr=0.02, batch=100),
}


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051:
        raise SystemExit(f"python_vae.py: {path}: not an idx3 image file (magic {magic})")
    t = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8)
    return t.view(n, rows * cols).float().div_(255.0)


class VAE(nn.Module):
    """pytorch/examples' VAE with the configuration's widths and activation."""

    def __init__(self, hidden, latent, act):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)
        self.act = torch.tanh if act == "tanh" else F.relu

    def encode(self, x):
        h1 = self.act(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode_logits(self, z):
        return self.fc4(self.act(self.fc3(z)))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return torch.sigmoid(self.decode_logits(z)), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def make_optimizer(params, cfg, foreach):
    kw = dict(foreach=True) if foreach else {}
    if cfg["opt"] == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg["lr"], **kw)
    return torch.optim.Adam(params, lr=cfg["lr"], **kw)


def raise_malloc_thresholds():
    """glibc mallopt, as the suite's configure_runtime does."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim, m_top_pad, m_mmap = -1, -2, -3
        ok = libc.mallopt(m_mmap, 32 * 1024 * 1024) == 1
        ok = libc.mallopt(m_trim, 1024 * 1024 * 1024) == 1 and ok
        ok = libc.mallopt(m_top_pad, 64 * 1024 * 1024) == 1 and ok
        return ok
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--variant", choices=["default", "threads", "tuned"], required=True)
    ap.add_argument("--steps", type=int, default=200, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = ap.parse_args()
    if a.steps < 1 or a.repeats < 1 or a.warmup < 0:
        print("python_vae.py: --steps and --repeats must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2
    cfg = CONFIGS[a.config]
    path = os.path.join(a.data_dir, "train-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        print(f"python_vae.py: {path} is missing (apt-get install dataset-fashion-mnist)", file=sys.stderr)
        return 1

    default_threads = torch.get_num_threads()
    malloc_tuned = False
    if a.variant in ("threads", "tuned"):
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    if a.variant == "tuned":
        malloc_tuned = raise_malloc_thresholds()
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    train = read_idx_images(path)  # [N, 784] gray levels
    n = train.size(0)
    model = VAE(cfg["hidden"], cfg["latent"], cfg["act"]).to(device)
    model.train()
    optimizer = make_optimizer(model.parameters(), cfg, foreach=a.variant == "tuned")
    batch = cfg["batch"]

    if a.variant in ("default", "threads"):
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train), batch_size=batch,
                                             shuffle=True)
        it = iter(loader)
        train_loss = 0.0

        def step():
            nonlocal it, train_loss
            try:
                (data,) = next(it)
            except StopIteration:
                it = iter(loader)
                (data,) = next(it)
            data = torch.bernoulli(data.to(device))  # dynamic binarisation
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
            return data.size(0)
    else:
        train = train.to(device)
        state = {"perm": torch.randperm(n, device=device), "pos": 0}
        running = torch.zeros((), device=device)

        def step():
            nonlocal running
            if state["pos"] + batch > n:
                state["perm"] = torch.randperm(n, device=device)
                state["pos"] = 0
            idx = state["perm"][state["pos"]:state["pos"] + batch]
            state["pos"] += batch
            data = torch.bernoulli(train.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            mu, logvar = model.encode(data)
            z = model.reparameterize(mu, logvar)
            logits = model.decode_logits(z)
            bce = F.binary_cross_entropy_with_logits(logits, data, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = bce + kld
            loss.backward()
            optimizer.step()
            running += loss.detach()
            return batch

    for _ in range(a.warmup):
        step()
    rates = []
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.repeats):
        sync()
        t0 = time.perf_counter()
        samples = 0
        for _ in range(a.steps):
            samples += step()
        sync()
        rates.append(samples / (time.perf_counter() - t0))

    print(json.dumps({
        "variant": "python-" + a.variant,
        "config": a.config,
        "samples_per_s": rates,
        "steps": a.steps,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "default_threads": default_threads,
        "malloc_tuned": malloc_tuned,
        "torch_version": torch.__version__,
        "device": a.device,
        "python": sys.version.split()[0],
        "parallel_backend": "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "other",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
