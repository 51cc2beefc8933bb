"""Train a deep resistive network (Kendall 2020 / Scellier 2024 DRN) on MNIST with centred EP, through pulses.

    python scripts/train_drn.py --epochs 1 --hidden 100            # 1568-100-10, 60k train / 10k test

The network is :class:`circuits.resistive_network.ResistiveNetwork`: 1568 input
sources (each pixel at +v_in x and an inverted copy at -v_in x), amplified by
``--gain-in``, one crossbar of linear memristors (SoftBoundsDevice, gamma = 0,
unless ``--device exp``) to the hidden nodes clamped by diode pairs, amplifiers
of gain ``--gain-hid``, a second crossbar to 10 linear output nodes. Two bias
lines (+1 V, -1 V) feed every crossbar. Targets are one-hot voltages
(``--t-on`` for the label, 0 V otherwise); the prediction is the most positive
output. Learning: :class:`learning.resistive_ep.ResistiveEP` (centred +-beta),
Proportional pulse widths quantised to ``--quantum`` of dt_max.

Prints, per epoch: time, mean settle time per sample and phase, train loss and
error (free phase, before each update), test error; and writes them as JSON
lines to ``--out`` if given.
"""
from __future__ import annotations

import os

# Before numpy loads OpenBLAS, which reads this once: its idle threads then sleep at once
# instead of spinning for 2^28 cycles after each product, on the cores the numba kernels
# need between products (a DRBM mini-batch: 24-36 ms spinning, 14-17 ms not; BENCHMARKS.md).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse
import json
import time

import numpy as np

from circuits import ProgramSettings
from circuits.resistive_network import DiodeClamp, ResistiveNetwork
from crossbar.devices import ExponentialDevice, SoftBoundsDevice
from learning.data import load_mnist, minibatches, one_hot
from learning.resistive_ep import ResistiveEP, duplicate_inverted
from learning.updates import Proportional


def build(args, rng):
    bounds = dict(g_min=args.g_min, g_max=args.g_max)
    if args.device == "linear":
        device = SoftBoundsDevice(gamma=0.0, init_std=args.init_std, init_mean=args.init_mean, **bounds)
    else:
        device = ExponentialDevice.thesis(beta=args.exp_beta, dt_max=1e-6, init_std=args.init_std,
                                          init_mean=args.init_mean, **bounds)
    n_in = 2 * (784 + args.bias_pixel)
    net = ResistiveNetwork((n_in, args.hidden, 10), device, gains=(args.gain_in, args.gain_hid),
                           diode=DiodeClamp(v_bias=args.v_bias, sides=args.diodes, i_sat=args.i_sat, n=args.n_diode),
                           output_diodes=False, settings=ProgramSettings(v_write=1.6), rng=rng)
    if len(args.lr) not in (1, len(net.crossbars)):
        raise SystemExit(f"--lr: give one value or one per crossbar ({', '.join(net.crossbars)})")
    lrs = dict(zip(net.crossbars, args.lr * len(net.crossbars) if len(args.lr) == 1 else args.lr))
    # dG = -lr dL/dG; a linear device moves dG_r per dt_max of pulse, so width = lr dt_max/dG_r (-dL/dG)
    policies = {name: Proportional(lr * device.dt_max / device.dg_r, limits=(0.0, device.dt_max),
                                   quantum=args.quantum * device.dt_max) for name, lr in lrs.items()}
    return net, ResistiveEP(net, policies, beta=args.beta)


def inputs(x, args):
    """Input voltages: each pixel and its inverted copy, plus an always-white pixel with --bias-pixel."""
    if args.bias_pixel:
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    return duplicate_inverted(x, args.v_in)


def time_spice(net, u):
    """Wall time of ngspice's .op on the whole network for one input, and its agreement with ours."""
    from circuits.spice import run_ngspice
    t0 = time.perf_counter()
    op = net.operating_point(u)
    t_ours = time.perf_counter() - t0
    deck = net.to_spice(u)
    t0 = time.perf_counter()
    ng = run_ngspice(deck, timeout=3600)
    t_ng = time.perf_counter() - t0
    diff = max(abs(ng.voltage(f"x{l}_{j}") - op.layers[l][0, j])
               for l in (1, 2) for j in range(net.layer_sizes[l]))
    print(json.dumps(dict(spice_elements=len(deck), ngspice_s=t_ng, ours_s=t_ours, max_abs_diff_V=diff)),
          flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, nargs="+", default=[3e-8],
                   help="dG = -lr dL/dG, S^2/V^2: one value, or one per crossbar (input side first)")
    p.add_argument("--lr-decay", type=float, default=0.99, help="per epoch")
    p.add_argument("--beta", type=float, default=1e-3, help="nudging conductance, S")
    p.add_argument("--v-in", type=float, default=1.0, help="input voltage of a white pixel, V")
    p.add_argument("--gain-in", type=float, default=100.0)
    p.add_argument("--gain-hid", type=float, default=4.0)
    p.add_argument("--v-bias", type=float, default=0.0, help="diode bias, V")
    p.add_argument("--diodes", choices=("both", "split"), default="both",
                   help="both clamping diodes on every hidden node, or split: half rectified from below, "
                        "half from above (Scellier 2024's excitatory/inhibitory units)")
    p.add_argument("--i-sat", type=float, default=1e-14, help="diode saturation current, A (larger: sharper "
                   "knee nearer 0 V)")
    p.add_argument("--n-diode", type=float, default=1.0, help="diode emission coefficient")
    p.add_argument("--bias-pixel", type=int, choices=(0, 1), default=0,
                   help="1: append an always-white pixel (and its inverted copy): amplified bias rows into "
                        "the hidden layer, like Scellier's current-source biases")
    p.add_argument("--t-on", type=float, default=1.0, help="target voltage of the label's output, V")
    p.add_argument("--device", choices=("linear", "exp"), default="linear")
    p.add_argument("--exp-beta", type=float, default=0.005)
    p.add_argument("--init-std", type=float, default=0.4, help="initial spread, fraction of the devices' midpoint")
    p.add_argument("--init-mean", type=float, default=None,
                   help="initial mean conductance, S (default: the midpoint; g_min: half the devices start RESET)")
    p.add_argument("--g-min", type=float, default=100e-6 / 13, help="device's lowest conductance, S")
    p.add_argument("--g-max", type=float, default=100e-6, help="device's highest conductance, S")
    p.add_argument("--quantum", type=float, default=1e-4, help="pulse-width resolution, fraction of dt_max")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--time-spice", action="store_true",
                   help="also time ngspice on the free phase of one test image (the full 158k-resistor deck)")
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    x_train, y_train = x_train[:args.n_train], y_train[:args.n_train]
    x_test, y_test = x_test[:args.n_test], y_test[:args.n_test]
    u_test = inputs(x_test, args)
    net, rule = build(args, rng)
    n_devices = sum(np.prod(net.crossbar_shape(n)) for n in net.crossbars)
    print(f"DRN {net.layer_sizes[0]}-{args.hidden}-10, {n_devices} devices, "
          f"train {len(y_train)}, test {len(y_test)}, batch {args.batch}", flush=True)
    if args.time_spice:
        time_spice(net, u_test[:1])
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss = errors = 0.0
        settles0 = net.counters.settles
        for n_batch, idx in enumerate(minibatches(len(y_train), args.batch, rng), 1):
            u = inputs(x_train[idx], args)
            st = rule.step(u, args.t_on * one_hot(y_train[idx]), labels=y_train[idx])
            loss += st.loss * len(idx)
            errors += st.errors
            if n_batch % 500 == 0:
                print(f"  {n_batch * args.batch:6d} samples  loss {loss / (n_batch * args.batch):.4f}  "
                      f"train err {errors / (n_batch * args.batch):.4f}  {time.perf_counter() - t0:.0f} s",
                      flush=True)
        t_train = time.perf_counter() - t0
        settles = net.counters.settles - settles0
        t1 = time.perf_counter()
        test_err = rule.error_rate(u_test, y_test)
        t_test = time.perf_counter() - t1
        rec = dict(epoch=epoch, train_loss=loss / len(y_train), train_error=errors / len(y_train),
                   test_error=test_err, epoch_time_s=t_train, settle_s_per_sample_phase=t_train / settles,
                   test_time_s=t_test, test_settle_s_per_sample=t_test / len(y_test),
                   read_over_threshold=net.counters.read_over_threshold,
                   newton_iterations=net.counters.newton_iterations, device_clipped=net.counters.device_clipped,
                   pulses_dropped={n: p.n_dropped for n, p in rule.policies.items()},
                   pulses_capped={n: p.n_capped for n, p in rule.policies.items()})
        print(json.dumps(rec), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        for pol in {id(p): p for p in rule.policies.values()}.values():
            pol.scale *= args.lr_decay


if __name__ == "__main__":
    main()
