"""Hardware-in-the-loop training on MNIST, from a netlist: CD models (DRBM, RBM + softmax, DBN) or EP.

The rule follows from the chip (``--model auto``, the default; or name it):

- ``ep``: a chip with an ``output`` neuron group and no CD tile (a bidirectional
  tile between stochastic groups) is a layered network trained by equilibrium
  propagation (``--ep-rule`` ep or vf, ``--continual`` for C-EP/C-VF,
  ``--estimator`` one-sided/centred/random, ``--nudge-at`` current/activity);
- ``rbm-softmax``: a CD tile whose hidden group drives a tile into an
  ``output`` group: an RBM topped by a softmax classifier, both tiles updated at
  every mini-batch (learning/dbn.py);
- ``dbn``: several CD tiles and no output group: a deep belief net trained
  greedily, layer by layer (``--layer-epochs``; the top DRBM trains every later
  epoch; the test error is measured once the top trains);
- ``drbm``: otherwise, the one bidirectional tile (or ``--tile``) is a
  discriminative RBM trained by contrastive divergence;
- a netlist with a ``.drn`` card is a deep resistive network (not a chip of
  neuron groups), trained by centred EP from its DC operating points
  (``--beta`` is then a conductance, S).

Every weight update is a pulse schedule sent to the simulated chip; the rule
sees only what the chip's neurons measure. The run writes, in ``--out``:

- ``run.h5``: per-device conductance histories, pulse counts, per-epoch metrics,
  provenance and a checkpoint after every epoch (``scripts/inspect_run.py`` reads it);
- ``learning_curve.png``, ``conductances.png`` (histograms through training),
  ``features.png`` (hidden units' weights as 28x28 images, thesis Fig. 2.2),
  ``pulse_widths.png`` (the RProp width distribution, RProp only).

Interrupt it (Ctrl-C) or kill it and run the same command with ``--resume``:
it continues from the last completed epoch.

    python scripts/train.py netlists/drbm_small.net --out runs/drbm
    python scripts/train.py netlists/rbm_softmax_mnist.net --out runs/rbm_softmax --epochs 30 --train 40000
    python scripts/train.py netlists/dbn_mnist.net --out runs/dbn --epochs 90 --layer-epochs 30 --train 40000
    python scripts/train.py netlists/ep_p1h_ideal.net --out runs/ep --policy proportional \
        --scale 0.01 0.005 --quantum 1e-6
"""
from __future__ import annotations

import os

# Before numpy loads OpenBLAS, which reads this once: its idle threads then sleep at once
# instead of spinning for 2^28 cycles after each product, on the cores the numba kernels
# need between products (a DRBM mini-batch: 24-36 ms spinning, 14-17 ms not; BENCHMARKS.md).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import circuits  # noqa: E402
from circuits.history import History, read_checkpoint  # noqa: E402
from circuits.resistive_network import ResistiveNetwork  # noqa: E402
from learning.data import (binarise, binarise_stochastic, downsample, load_mnist, minibatches, one_hot,  # noqa: E402
                           thesis_split)
from learning.dbn import DBN, GreedySchedule, RBMSoftmax, is_cd_tile  # noqa: E402
from learning.ep import EPConfig, EquilibriumNetwork, align_backward  # noqa: E402
from learning.rbm import DRBM  # noqa: E402
from learning.resistive_ep import ResistiveEP, duplicate_inverted  # noqa: E402
from learning.stdp import StdpEP, StdpParams, StdpRule  # noqa: E402
from learning.updates import Cst, Proportional, RProp  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("netlist", help="netlist of the chip")
    ap.add_argument("--out", default="runs/train", help="output folder")
    ap.add_argument("--model", choices=("auto",) + MODELS, default="auto",
                    help="what to train (auto: from the chip's structure, see above)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train", type=int, default=5000, help="training images (thesis: 40000 DRBM, 60000 EP)")
    ap.add_argument("--test", type=int, default=1000, help="test images (thesis: 10000)")
    ap.add_argument("--batch", type=int, default=None, help="mini-batch size (thesis: 100 DRBM, 20 EP)")
    ap.add_argument("--policy", choices=("cst", "rprop", "proportional"), default="cst",
                    help="proportional: widths = --scale x statistic (with --quantum: quantised)")
    ap.add_argument("--scale", type=float, nargs="+", default=[2.5e-5],
                    help="seconds of pulse per unit of statistic (proportional); one value, or one per tile")
    ap.add_argument("--quantum", type=float, default=None, help="drivers' pulse-width resolution, s")
    ap.add_argument("--lr-decay", type=float, default=1.0,
                    help="proportional: multiply every tile's --scale by this after each epoch (Scellier's DRN: "
                         "0.99)")
    ap.add_argument("--width", type=float, default=None,
                    help="pulse width (RProp: initial and largest width), s; default: the drivers' dt_max")
    ap.add_argument("--tile", default=None, help="DRBM: tile to train (default: the only one)")
    ap.add_argument("--seed", type=int, default=None, help="overrides the netlist's .seed")
    ap.add_argument("--eval-every", type=int, default=1, help="evaluate every this many epochs (and at the end)")
    ap.add_argument("--eval-train", type=int, default=None,
                    help="training images used for the training error (default: as many as --test)")
    ap.add_argument("--record", default="2000", help="devices with full traces per tile: a number or 'all'")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    cd = ap.add_argument_group("contrastive divergence (DRBM, RBM + softmax, DBN)")
    cd.add_argument("--chains", type=int, default=1, help="parallel CD chains per sample (thesis: 1 or 20)")
    cd.add_argument("--eval-chains", type=int, default=40,
                    help="DRBM/DBN inference: Gibbs chains per test image, 2 steps each (thesis: 40)")
    cd.add_argument("--labels", choices=("bernoulli", "softmax"), default="bernoulli",
                    help="DRBM: label units in a reconstruction fire each on their own (bernoulli) or as one "
                         "label drawn from the softmax of their inputs (the thesis' code)")
    cd.add_argument("--binarise", choices=("threshold", "stochastic"), default="threshold",
                    help="DRBM training images: thresholded at half intensity, or drawn afresh for every "
                         "mini-batch as Bernoulli(intensity) (the thesis' code); test images are thresholded")
    cd.add_argument("--layer-epochs", type=int, nargs="+", default=None,
                    help="DBN: epochs of each lower RBM (one value for all, or one per lower layer); the top "
                         "DRBM trains every later epoch. Default: --epochs / number of layers (at least 1). "
                         "A resumed run keeps the schedule it started with")
    cd.add_argument("--exact-softmax", action="store_true",
                    help="RBM + softmax: classifier statistic with the softmax probabilities instead of a "
                         "sampled label (the thesis code samples)")
    ep = ap.add_argument_group("equilibrium propagation (chips with an output group)")
    ep.add_argument("--T", type=int, default=30, help="free-phase steps (thesis P-1h: 30)")
    ep.add_argument("--K", type=int, default=10, help="nudged-phase steps (thesis P-1h: 10)")
    ep.add_argument("--beta", type=float, default=0.1, help="nudging strength, V per unit error (thesis P-1h: 0.1)")
    ep.add_argument("--estimator", choices=("one-sided", "centred", "random"), default="one-sided")
    ep.add_argument("--mode", choices=("discrete", "euler"), default="discrete",
                    help="discrete: prototypical setting; euler: leaky integrators (energy-based)")
    ep.add_argument("--ep-rule", choices=("ep", "vf", "stdp"), default="ep",
                    help="vf: vector-field rule (untied tiles); stdp: the nudged phase's traces written as "
                         "pre/post spike waveforms whose overlap crosses the device thresholds")
    ep.add_argument("--kappa", type=float, default=20e-9,
                    help="STDP: post-spike delay per unit change of post activity, s (the rule's learning rate)")
    ep.add_argument("--cycles-per-step", type=int, default=1, help="STDP: spike cycles per nudged step")
    ep.add_argument("--continual", action="store_true", help="pulses at every nudged step (C-EP, C-VF)")
    ep.add_argument("--nudge-at", choices=circuits.NUDGE_PLACES, default="current",
                    help="current: into the output op-amps, before the activation (default); activity: a "
                         "summing stage after the activation adds it, the thesis' prototypical nudge")
    ep.add_argument("--skip-unsettled", type=float, default=None, metavar="GAP",
                    help="leave out of the nudged phase and the update the images whose outputs or hidden "
                         "activities still change by more than GAP at the last free step (two-step cycles, "
                         "the source of the C-VF runaway; not in the thesis); the count is the 'skipped' metric")
    ep.add_argument("--angle", type=float, default=None,
                    help="untied tiles: program each backward tile to its forward tile's transpose with this "
                         "initial angle, degrees (write-verify pulses from measured conductances)")
    ep.add_argument("--verify-width", type=float, default=None,
                    help="write-verify pulse width for --angle, s (default: dt_max / 200)")
    return ap.parse_args(argv)


MODELS = ("drbm", "rbm-softmax", "dbn", "ep")


def detect_model(chip, tile=None) -> str:
    """The model a chip's structure implies (see the module docstring)."""
    cd = [t for t in chip.tiles if is_cd_tile(chip, t)]
    if any(g.params.role == "output" for g in chip.groups.values()):
        return "rbm-softmax" if cd else "ep"
    return "dbn" if len(cd) > 1 and tile is None else "drbm"


def make_policies(args, chip, tiles):
    """One update policy per trained tile."""
    limits = chip.pulse_limits
    width = args.width if args.width is not None else limits[1]
    if args.policy == "proportional":
        scales = args.scale if len(args.scale) > 1 else args.scale * len(tiles)
        if len(scales) != len(tiles):
            sys.exit(f"--scale: give one value or one per tile ({', '.join(tiles)})")
        return {t: Proportional(sc, limits=limits, quantum=args.quantum) for t, sc in zip(tiles, scales)}
    if not np.isfinite(width):
        sys.exit("give --width: the netlist's drivers have no dt_max")
    if args.policy == "cst":
        return {t: Cst(width, limits=limits, quantum=args.quantum) for t in tiles}
    return {t: RProp(chip.tile_shape(t), width, limits=limits, quantum=args.quantum) for t in tiles}


class Job:
    """What every job may add to the epoch loop (nothing, by default)."""

    extra_metrics = ()
    """Names of the job's own per-epoch metrics (see :meth:`epoch_metrics`)."""
    title = ""

    def begin_epoch(self, epoch):
        """Called before each epoch (0-based)."""

    def evaluates(self, epoch) -> bool:
        """Whether the errors mean anything after this epoch."""
        return True

    def epoch_metrics(self) -> dict:
        return {}

    eval_metrics = ()
    """Names of the job's own evaluation metrics (see :meth:`evaluate_more`), NaN between evaluations."""

    def evaluate_more(self) -> dict:
        """More test metrics, computed at the evaluation epochs only."""
        return {}

    def describe(self, epoch) -> str:
        """Prefix of the epoch's summary line."""
        return f"epoch {epoch + 1}"

    rng = None
    """The rule's own random generator, if it draws anything (saved with each checkpoint)."""

    def checkpoint_meta(self) -> dict:
        """JSON-able state the job needs to resume, saved with each checkpoint."""
        return {} if self.rng is None else {"rule_rng": self.rng.bit_generator.state}

    def restore(self, meta):
        """Restore :meth:`checkpoint_meta` from a checkpoint's meta."""
        # a run checkpointed before its job had a stream of its own has not drawn from it yet
        if self.rng is not None and "rule_rng" in meta:
            self.rng.bit_generator.state = meta["rule_rng"]

    def bind(self, policies):
        """Called once with the update policies, before training."""

    def feature_weights(self, chip):
        """(tile, weights (rows, units), n_pixels) of the first layer, measured as an instrument would."""
        tile, n_pixels = self.feature_tile()
        g = chip.measure_conductance(tile)
        return tile, g[:, 0::2] - g[:, 1::2], n_pixels


def _image_side(n_pixels):
    """Side of the square image a chip with ``n_pixels`` pixel inputs takes (28 or a divisor of it)."""
    side = int(round(np.sqrt(n_pixels)))
    if side * side != n_pixels or 28 % side:
        sys.exit(f"the chip has {n_pixels} pixel inputs: need 784 or a square image whose side divides 28")
    return side


def _binary_mnist(args, n_pixels=784, grey=False):
    """The thesis' binarised 40k/10k MNIST, cut to --train and --test images.

    A chip with fewer pixel inputs (a square number, e.g. 196) gets the images
    average-pooled to that size before binarising (netlists/drbm14_*.net).
    ``grey``: the intensities, not binarised."""
    split = thesis_split()
    side = _image_side(n_pixels)

    def prep(x):
        x = x if side == 28 else downsample(x, side)
        return x if grey else binarise(x)
    return (prep(split.train_images[:args.train]), split.train_labels[:args.train],
            prep(split.test_images[:args.test]), split.test_labels[:args.test])


class CDJob(Job):
    """A discriminative RBM on the chip's one tile, binarised MNIST (thesis Part II protocol)."""

    kind = "cd"
    batch = 100
    title = "DRBM trained through pulses"

    def __init__(self, args, chip):
        self.args = args
        self.tile = args.tile or chip.tiles[0]
        # the rule's own stream: softmax labels and stochastic binarisation draw from it
        self.rng = np.random.default_rng([chip.seed or 0, 3])
        self.model = DRBM(chip, self.tile, labels=args.labels, rng=self.rng)
        grey_train, self.y_train, grey_test, self.y_test = _binary_mnist(args, self.model.n_pixels, grey=True)
        self.x_train, self.x_test = binarise(grey_train), binarise(grey_test)
        self._grey = grey_train if args.binarise == "stochastic" else None
        self.tiles = (self.tile,)

    def step(self, idx, policies):
        pixels = self.x_train[idx] if self._grey is None else binarise_stochastic(self._grey[idx], self.rng)
        v0 = self.model.visible_vector(pixels, self.y_train[idx])
        stats, report = self.model.train_batch(v0, policies[self.tile], chains=self.args.chains)
        return [report] if report is not None else [], stats.reconstruction_error

    def error_rate(self, x, y):
        return self.model.error_rate(x, y, chains=self.args.eval_chains)

    eval_metrics = ("test_error_free_energy",)

    def evaluate_more(self):
        """The test error by lowest free energy as well: how the thesis' code scores its tables."""
        return {"test_error_free_energy": self.model.error_rate(self.x_test, self.y_test, method="free-energy")}

    def feature_tile(self):
        return self.tile, self.model.n_pixels


class RBMSoftmaxJob(Job):
    """An RBM topped by a softmax classifier, binarised MNIST: both tiles updated every mini-batch."""

    kind = "rbm-softmax"
    batch = 100
    title = "RBM + softmax trained through pulses"
    extra_metrics = ("classifier_loss", "classifier_train_error")

    def __init__(self, args, chip):
        self.args = args
        self.model = RBMSoftmax(chip)
        self.x_train, self.y_train, self.x_test, self.y_test = _binary_mnist(args)
        self.tiles = self.model.tiles
        self.rng = np.random.default_rng([chip.seed or 0, 2])    # sampled labels: the rule's own stream
        self._ce, self._wrong, self._seen = [], 0, 0

    def begin_epoch(self, epoch):
        self._ce, self._wrong, self._seen = [], 0, 0

    def step(self, idx, policies):
        res = self.model.train_batch(self.x_train[idx], self.y_train[idx], policies, chains=self.args.chains,
                                     rng=None if self.args.exact_softmax else self.rng)
        self._ce.append(res.softmax.loss)
        self._wrong += res.softmax.errors
        self._seen += len(idx)
        return res.reports, res.cd.reconstruction_error

    def epoch_metrics(self):
        """Running classifier cross-entropy and error on the training mini-batches, before each update."""
        return {"classifier_loss": float(np.mean(self._ce)), "classifier_train_error": self._wrong / self._seen}

    def error_rate(self, x, y):
        return self.model.error_rate(x, y)

    def feature_tile(self):
        return self.tiles[0], self.model.rbm.n_visible


class DBNJob(Job):
    """A deep belief net, greedy: each lower RBM for its epochs, then the top DRBM (binarised MNIST)."""

    kind = "dbn"
    batch = 100
    title = "DBN (greedy) trained through pulses"
    extra_metrics = ("layer",)

    def __init__(self, args, chip):
        self.args = args
        self.model = DBN(chip)
        self.x_train, self.y_train, self.x_test, self.y_test = _binary_mnist(args)
        self.tiles = self.model.tiles
        self.schedule = self._schedule(args.layer_epochs)
        self.layer = 0

    def _schedule(self, given):
        n_lower = self.model.n_layers - 1
        if given is None:
            given = [max(1, self.args.epochs // self.model.n_layers)]
        if len(given) == 1:
            given = given * n_lower
        if len(given) != n_lower:
            sys.exit(f"--layer-epochs: give one value or one per lower layer ({', '.join(self.tiles[:-1])})")
        return GreedySchedule(tuple(int(e) for e in given))

    def begin_epoch(self, epoch):
        self.layer = self.schedule.locate(epoch)[0]

    def evaluates(self, epoch):
        return self.schedule.locate(epoch)[0] == self.model.n_layers - 1

    def describe(self, epoch):
        layer, e = self.schedule.locate(epoch)
        total = self.schedule.layer_epochs[layer] if layer < len(self.schedule.layer_epochs) else None
        return (f"epoch {epoch + 1} ({'top DRBM' if total is None else 'RBM'} {self.tiles[layer]}, "
                f"its epoch {e + 1}{'' if total is None else f'/{total}'})")

    def step(self, idx, policies):
        tile = self.tiles[self.layer]
        stats, report = self.model.train_batch(self.layer, self.x_train[idx], self.y_train[idx], policies[tile],
                                               chains=self.args.chains)
        return [report] if report is not None else [], stats.reconstruction_error

    def epoch_metrics(self):
        return {"layer": self.layer + 1}

    def error_rate(self, x, y):
        return self.model.error_rate(x, y, chains=self.args.eval_chains)

    def feature_tile(self):
        return self.tiles[0], self.model.layers[0].n_visible

    def checkpoint_meta(self):
        return {"layer_epochs": list(self.schedule.layer_epochs)}

    def restore(self, meta):
        saved = GreedySchedule(tuple(meta["layer_epochs"]))
        if self.args.layer_epochs is not None and self._schedule(self.args.layer_epochs) != saved:
            sys.exit(f"--layer-epochs {' '.join(map(str, self.args.layer_epochs))} differs from the resumed "
                     f"run's schedule {' '.join(map(str, saved.layer_epochs))}")
        self.schedule = saved


class EPJob(Job):
    """A layered network trained by EP/VF, C-EP/C-VF, on grey-level MNIST (thesis Parts IV-V protocol)."""

    kind = "ep"
    batch = 20
    title = "EP trained through pulses"

    def __init__(self, args, chip):
        self.args = args
        self.net = EquilibriumNetwork(chip)
        if args.ep_rule != "stdp":
            self.cfg = EPConfig(T=args.T, K=args.K, beta=args.beta, estimator=args.estimator, mode=args.mode,
                                rule=args.ep_rule, continual=args.continual, nudge_at=args.nudge_at,
                                skip_unsettled=args.skip_unsettled)
        if args.skip_unsettled is not None:
            if args.ep_rule == "stdp":
                raise SystemExit("--skip-unsettled applies to --ep-rule ep and vf, not stdp")
            self.extra_metrics = ("skipped",)    # training images left out per epoch
        self._skipped = 0
        self.x_train, self.y_train, self.x_test, self.y_test = _grey_mnist(args, chip.groups[self.net.inputs].size)
        self.tiles = chip.tiles
        self.rng = np.random.default_rng([chip.seed or 0, 2])    # the rule's own stream (random beta, spikes)

    def align(self, chip, angle, width):
        """C-VF: set each backward tile (listed after its forward tile) to the forward tile's initial angle."""
        seen = {}
        for t in chip.tiles:
            r, c = chip.tile_groups(t)
            if (c, r) in seen:
                rep = align_backward(chip, seen[c, r], t, angle, np.random.default_rng([chip.seed or 0, 3]),
                                     width=width)
                print(f"tile {t}: programmed to the transpose of {seen[c, r]} at {angle:g} degrees "
                      f"({int(rep.pulses.sum())} write-verify pulses, {rep.n_unverified} devices not verified)")
            else:
                seen[r, c] = t

    def begin_epoch(self, epoch):
        self._skipped = 0

    def epoch_metrics(self):
        return {"skipped": self._skipped} if "skipped" in self.extra_metrics else {}

    def step(self, idx, policies):
        res = self.net.train_batch(self.x_train[idx], self.y_train[idx], self.cfg, policies, self.rng)
        self._skipped += res.skipped
        out = res.free_outputs
        onehot = self.net.targets(self.y_train[idx])
        return res.reports, float(np.mean(np.sum((out - onehot) ** 2, axis=1)) / 2)

    def error_rate(self, x, y):
        return self.net.error_rate(x, y, self.cfg)

    def feature_tile(self):
        first = [t for t in self.tiles if self.net.chip.tile_groups(t)[0] == self.net.inputs]
        return first[0], self.net.chip.groups[self.net.inputs].size


class StdpJob(EPJob):
    """EP whose updates are STDP events: spike waveforms of the nudged phase's traces (learning/stdp.py)."""

    title = "EP with STDP-like spike events"

    def __init__(self, args, chip):
        super().__init__(args, chip)
        params = StdpParams(kappa=args.kappa, cycles_per_step=args.cycles_per_step)
        self.rule = StdpEP(chip, StdpRule(chip, params, rng=self.rng), inputs=self.net.inputs,
                           outputs=self.net.outputs, beta=args.beta, free_steps=args.T, nudge_steps=args.K,
                           mode=args.mode)

    def step(self, idx, policies):
        onehot = self.net.targets(self.y_train[idx])
        res = self.rule.train_batch(self.x_train[idx], onehot)
        out = res.free_outputs
        return list(res.reports.values()), float(np.mean(np.sum((out - onehot) ** 2, axis=1)) / 2)

    def error_rate(self, x, y):
        return float(np.mean(self.rule.predict(x) != y))


def _grey_mnist(args, n_inputs=784):
    """Official 60k/10k MNIST grey levels in [0, 1], cut to --train and --test images; average-pooled
    when the chip has fewer inputs (a square number whose side divides 28)."""
    side = _image_side(n_inputs)
    (x, y), (xt, yt) = load_mnist("train"), load_mnist("test")
    x, xt = x[:args.train], xt[:args.test]
    if side != 28:
        x, xt = downsample(x, side), downsample(xt, side)
    return x, y[:args.train], xt, yt[:args.test]


class DRNJob(Job):
    """A deep resistive network (``.drn`` netlist) trained by centred EP on grey-level MNIST.

    Inputs are the pixels and their inverted copies, in volts; targets are 1 V on the
    label's output and 0 V elsewhere; the nudge is a conductance --beta (S) to the target;
    the prediction is the most positive output (learning/resistive_ep.py)."""

    kind = "drn"
    batch = 16
    title = "Deep resistive network trained by centred EP"

    def __init__(self, args, net):
        self.args = args
        self.net = net
        self.tiles = net.crossbars
        n_in = net.layer_sizes[0] // 2
        # 785 input pairs: the pixels and an always-white one, whose amplified pair is a strong
        # bias into the first hidden layer (Scellier's current-source biases)
        self.bias_pixel = n_in == 28 * 28 + 1
        self.x_train, self.y_train, self.x_test, self.y_test = _grey_mnist(args, n_in - self.bias_pixel)
        self.rule = None
        if args.estimator != "centred":
            print("DRN: the resistive network is trained with the centred (+-beta) estimator", flush=True)

    def bind(self, policies):
        self.rule = ResistiveEP(self.net, policies, beta=self.args.beta)

    def inputs(self, x):
        """Input voltages: each pixel and its inverted copy (and the white bias pixel's pair)."""
        if self.bias_pixel:
            x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        return duplicate_inverted(x, 1.0)

    def step(self, idx, policies):
        st = self.rule.step(self.inputs(self.x_train[idx]), one_hot(self.y_train[idx]), labels=self.y_train[idx])
        return st.reports, st.loss

    def error_rate(self, x, y):
        return self.rule.error_rate(self.inputs(x), y)

    def feature_tile(self):
        return self.tiles[0], self.net.layer_sizes[0] // 2 - self.bias_pixel

    def feature_weights(self, chip):
        """A pixel's weight: its device minus its inverted copy's (the pair the duplication makes)."""
        tile, n = self.feature_tile()
        g = chip.measure_conductance(tile)
        half = self.net.layer_sizes[0] // 2          # where the inverted copies start
        return tile, g[:n] - g[half:half + n], n


JOBS = {"drbm": CDJob, "rbm-softmax": RBMSoftmaxJob, "dbn": DBNJob, "ep": EPJob, "stdp": StdpJob,
        "drn": DRNJob}


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    h5 = out / "run.h5"
    chip = circuits.load(args.netlist, seed=args.seed)
    if isinstance(chip, ResistiveNetwork):
        model = "drn"
    else:
        model = detect_model(chip, args.tile) if args.model == "auto" else args.model
    if model == "ep" and args.ep_rule == "stdp":
        model = "stdp"
    job = JOBS[model](args, chip)
    is_ep = job.kind == "ep"
    batch = args.batch or job.batch
    policies = make_policies(args, chip, job.tiles)
    job.bind(policies)
    rng = np.random.default_rng([chip.seed or 0, 1])   # data order: its own stream
    metrics = {"epoch": [], "test_error": [], "train_error": [], "train_loss": [], "energy_J": [],
               "programming_time_s": [], "pulses": [], "seconds": []}
    metrics.update({k: [] for k in (*job.extra_metrics, *job.eval_metrics)})

    start_epoch = 0
    # at most every device of a tile (a small output crossbar may hold fewer than --record)
    record = "all" if args.record == "all" else \
        {t: min(int(args.record), int(np.prod(chip.physical_shape(t)))) for t in chip.tiles}
    if args.resume and h5.exists():
        ckpt = read_checkpoint(h5)
        if ckpt is None:
            sys.exit(f"{h5} holds no checkpoint yet: start without --resume")
        state, meta = ckpt
        chip.load_state_dict({"arrays": _unpack(state, "chip"), "rng": meta["chip_rng"],
                              "counters": meta["counters"]})
        for t, pol in policies.items():
            if isinstance(pol, Proportional) and args.lr_decay != 1.0:
                # the checkpoint holds the decayed scale: continue from it exactly, if it is the one expected
                saved, expected = float(meta["policy"][t]["scale"]), pol.scale * args.lr_decay ** (meta["epoch"] + 1)
                if not np.isclose(saved, expected, rtol=1e-9, atol=0):
                    sys.exit(f"tile {t}: the checkpoint's scale {saved:g} is not --scale x --lr-decay^epochs "
                             f"({expected:g}); resume with the arguments the run started with")
                pol.scale = saved
            pol.load_state_dict(_unpack(state, f"policy_{t}") | meta["policy"][t])
        rng.bit_generator.state = meta["data_rng"]
        job.restore(meta)
        # a run checkpointed by an older version may lack a newer metric: NaN for its epochs
        metrics = {k: meta["metrics"].get(k, [float("nan")] * len(meta["metrics"]["epoch"])) for k in metrics}
        start_epoch = meta["epoch"] + 1
        writer = chip.record_to(h5, record=record, mode="a", rewind=True)
        print(f"resuming after epoch {meta['epoch'] + 1}")
    else:
        if is_ep and args.angle is not None:
            job.align(chip, args.angle, args.verify_width or chip.pulse_limits[1] / 200)
        writer = chip.record_to(h5, record=record)

    with writer:
        for epoch in range(start_epoch, args.epochs):
            t0 = time.perf_counter()
            job.begin_epoch(epoch)
            energy = prog_time = 0.0
            pulses = 0
            losses = []
            batches = list(minibatches(len(job.x_train), batch, rng))
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
            for idx in bar:
                reports, loss = job.step(idx, policies)
                losses.append(loss)
                for report in reports:
                    energy += report.energy
                    prog_time += report.time
                    pulses += int(report.pulses.sum())
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if ((epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs) and job.evaluates(epoch):
                n_tr = args.eval_train or args.test
                test_err = job.error_rate(job.x_test, job.y_test)
                train_err = job.error_rate(job.x_train[:n_tr], job.y_train[:n_tr])
                more = job.evaluate_more()
            else:
                test_err = train_err = float("nan")
                more = dict.fromkeys(job.eval_metrics, float("nan"))
            for k, v in (("epoch", epoch + 1), ("test_error", test_err), ("train_error", train_err),
                         ("train_loss", float(np.mean(losses))), ("energy_J", energy),
                         ("programming_time_s", prog_time), ("pulses", pulses),
                         ("seconds", time.perf_counter() - t0), *job.epoch_metrics().items(), *more.items()):
                metrics[k].append(v)
            writer.metrics(epoch + 1, **{k: v[-1] for k, v in metrics.items() if k != "epoch"})
            for pol in policies.values():     # the next epoch's learning rate, saved with the checkpoint
                if isinstance(pol, Proportional):
                    pol.scale *= args.lr_decay
            save_checkpoint(writer, chip, policies, rng, metrics, epoch, job)
            errors = (f"test error {test_err * 100:.2f}%, train error {train_err * 100:.2f}%"
                      if job.evaluates(epoch) else f"reconstruction error {metrics['train_loss'][-1]:.4f}")
            errors += "".join(f", {k.replace('_', ' ')} {v * 100:.2f}%" for k, v in more.items() if np.isfinite(v))
            print(f"{job.describe(epoch)}: {errors}, "
                  f"{pulses} pulses, programming energy {energy:.3g} J (device units), "
                  f"{metrics['seconds'][-1]:.1f} s", flush=True)
    plots(out, h5, chip, job, policies, metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"wrote {h5} and plots in {out}")


def _pack(prefix, arrays):
    """Checkpoint names are flat: 'chip/g/w' is stored as 'chip..g..w'."""
    return {"..".join([prefix, *k.split("/")]): v for k, v in arrays.items()}


def _unpack(state, prefix):
    return {k[len(prefix) + 2:].replace("..", "/"): v for k, v in state.items() if k.startswith(prefix + "..")}


def save_checkpoint(writer, chip, policies, rng, metrics, epoch, job):
    state = chip.state_dict()
    arrays = _pack("chip", state["arrays"])
    meta_policy = {}
    for t, pol in policies.items():
        pstate = pol.state_dict()
        arrays.update(_pack(f"policy_{t}", {k: v for k, v in pstate.items() if isinstance(v, np.ndarray)}))
        meta_policy[t] = {k: v for k, v in pstate.items() if not isinstance(v, np.ndarray)}
    meta = {"epoch": epoch, "chip_rng": state["rng"], "counters": state["counters"], "data_rng": rng.bit_generator.state,
            "metrics": metrics, "policy": meta_policy}
    meta.update(job.checkpoint_meta())
    writer.checkpoint(arrays, json.loads(json.dumps(meta, default=_jsonable)))


def _jsonable(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(type(x))


def plots(out, h5, chip, job, policies, metrics):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.array(metrics["epoch"])
    curves = [("test_error", "o-", "test"), ("train_error", "s--", "train")]
    curves += [(k, "^:", k.replace("_error", "").replace("_", " ")) for k in job.eval_metrics]
    for key, style, label in curves:
        err = np.array(metrics[key], dtype=float)
        ok = np.isfinite(err)            # epochs without an evaluation are skipped
        ax.plot(epochs[ok], err[ok] * 100, style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.legend()
    ax.set_title(job.title)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=110)
    plt.close(fig)

    with History(h5) as hist:
        fig, axes = plt.subplots(len(job.tiles), 1, figsize=(6, 3.2 * len(job.tiles)), squeeze=False)
        for ax, tile in zip(axes[:, 0], job.tiles):
            counts, edges = hist.histograms(tile)
            if len(counts):
                im = ax.imshow(np.asarray(counts).T, aspect="auto", origin="lower", cmap="magma",
                               extent=[0, len(counts), edges[0], edges[-1]])
                fig.colorbar(im, ax=ax, label="devices")
            ax.set_xlabel("programming event")
            ax.set_ylabel("conductance (S)")
            ax.set_title(f"tile {tile}: conductance histogram through training")
        fig.tight_layout()
        fig.savefig(out / "conductances.png", dpi=110)
        plt.close(fig)

    # first-layer features: weights measured as an instrument would (row by row at v_read)
    tile, w, n_pixels = job.feature_weights(chip)
    n_show = min(64, w.shape[1])
    side = int(np.ceil(np.sqrt(n_show)))
    fig, axes = plt.subplots(side, side, figsize=(side, side))
    for k, a in enumerate(np.ravel(axes)):
        a.axis("off")
        if k < n_show and n_pixels == 784:
            a.imshow(w[:784, k].reshape(28, 28), cmap="RdBu_r")
    fig.suptitle(f"tile {tile}: input weights of the first units (measured G+ - G-)")
    fig.savefig(out / "features.png", dpi=110)
    plt.close(fig)

    rprop = {t: p for t, p in policies.items() if isinstance(p, RProp)}
    if rprop:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for t, pol in rprop.items():
            ax.hist(pol.widths.ravel() / pol.width0, bins=60, alpha=0.6, label=t)
        ax.set_xlabel("RProp pulse width / initial width")
        ax.set_ylabel("devices")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "pulse_widths.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
