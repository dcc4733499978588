"""Bad input of every kind, to every command: exit code 2, one line on stderr naming the problem, no traceback,
and nothing changed in the store or the working directory (docs/SECURITY.md, "How it is tested").

Every case runs in-process through runner.__main__.main (argv in, exit code out) in a fresh working directory
holding the tests' own minimal experiments.toml (tests/support/minimal_experiments.toml; each bad config is it
with one line edited) and a store `runs/` with a real finished tiny run of it; the cluster commands talk to the
fake API server of tests/support/kube.py, which records every request. The same inputs to `python -m runner` in
its own process: tests/e2e/test_bad_input_cli.py.
"""

import io
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.support import SMALL
from tests.support.bad_config import (
    TINY_HEADER,
    TINY_RUN_ID,
    TOML,
    bad_input_workdir,
    edited,
    tiny,
    write_files,
)
from tests.support.cli import assert_refused, run_main, snapshot
from tests.support.kube import install

CLUSTER_COMMANDS = ("render", "submit", "status", "logs", "cancel")


# --- building bad inputs -------------------------------------------------------------------------------------


def cluster(old: str, new: str) -> str:
    return edited(old, new)


def npz(**arrays: np.ndarray) -> bytes:
    path = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"bad-input-{id(arrays)}.npz"
    np.savez(path, **arrays)
    data = path.read_bytes()
    path.unlink()
    return data


GOOD_NPZ = npz(x=np.zeros((4, 8, 8, 3), np.uint8))


def npz_bomb() -> bytes:
    """A .npz whose x.npy header claims 3 * 10**14 bytes of images; the data is 10 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**4, 10**4, 3)}
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.npy", header.getvalue() + bytes(10))  # the header starts with the magic
    return archive.getvalue()


def raw_member_npz() -> bytes:
    """A zip whose member `x` is not an array (numpy hands back its bytes)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x", b"just bytes")
    return archive.getvalue()


@dataclass
class Case:
    argv: list[str]
    expect: str
    files: dict[str, str | bytes | None] = field(default_factory=dict)  # None: a directory
    env: dict[str, str] = field(default_factory=dict)


def case(name: str, argv: str, expect: str, files=None, env=None, marks=()):
    return pytest.param(Case(shlex.split(argv), expect, files or {}, env or {}), id=name, marks=marks)


def show(name: str, text: str | bytes, expect: str, args: str = "--exp baseline", marks=()):
    """`show` of a config file `bad.toml`."""
    return case(name, f"show {args} --config bad.toml", expect, {"bad.toml": text}, marks=marks)


NEEDS_NO_GPU = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
LOCAL = f"local --exp baseline --iterations 2 --set '{SMALL}'"

CASES = [
    # --- config files -------------------------------------------------------------------------------------
    show("config-not-utf8", b"[defaults]\n# \xff\xfe caf\xe9\n", "not UTF-8"),
    case("config-directory", "show --exp baseline --config adir", "is a directory", {"adir": None}),
    case("config-missing", "show --exp baseline --config nope.toml", "no such config file"),
    case("config-missing-list", "list --config nope.toml", "no such config file"),
    case("config-directory-list", "list --config adir", "is a directory", {"adir": None}),
    show("config-bad-toml", "[defaults\nx = 1\n", "not valid TOML"),
    show("config-bad-toml-value", edited("sgld.steps = 60", "sgld.steps = 6 0"), "not valid TOML"),
    show("config-duplicate-key", tiny("sgld.steps = 3"), "not valid TOML"),
    show("config-too-large", "# " + "x" * (1 << 20) + "\n", "larger than"),
    show("config-unknown-table", TOML + "\n[sweeps]\nseeds = [0]\n", "[sweeps]: unknown table"),
    show("config-unknown-key", tiny("sgld.stepz = 3"), "sgld.stepz: unknown key"),
    show("config-unknown-key-nested", tiny("train.ebm_optimizer.lrr = 0.1"), "train.ebm_optimizer.lrr: unknown key"),
    show("config-unknown-section-key", tiny("sgl.steps = 3"), "sgl.steps: unknown key"),
    show("config-seed-in-profile", tiny("seed = 5"), "seed: not a setting"),
    show(
        "config-seed-in-experiment",
        edited('crl.method = "byol"', 'crl.method = "byol"\nseed = 1'),
        "seed",
        "--exp byol",
    ),
    show("config-str-for-int", edited("sgld.steps = 20", 'sgld.steps = "20"'), "sgld.steps"),
    show("config-float-for-int", edited("sgld.steps = 20", "sgld.steps = 20.0"), "sgld.steps"),
    show("config-bool-for-int", edited("sgld.steps = 20", "sgld.steps = true"), "sgld.steps"),
    show("config-int-for-bool", edited("sgld.augment = true", "sgld.augment = 1"), "sgld.augment"),
    show("config-str-for-list", edited("ebm.channels = [16, 32, 64]", 'ebm.channels = "16,32"'), "ebm.channels"),
    show("config-table-for-value", tiny("sgld.noise.x = 1"), "sgld.noise"),
    show("config-nan", edited("energy.beta = 0.01", "energy.beta = nan"), "energy.beta"),
    show("config-energy-beta-inf", edited("energy.beta = 0.01", "energy.beta = inf"), "energy.beta"),
    show("config-energy-alpha-negative", edited("energy.alpha = 1.0", "energy.alpha = -1.0"), "energy.alpha"),
    show("config-step-size-inf", edited("sgld.step_size = 100.0", "sgld.step_size = inf"), "sgld.step_size"),
    show("config-step-size-huge", edited("sgld.step_size = 100.0", "sgld.step_size = 1e300"), "sgld.step_size"),
    show("config-step-size-zero", edited("sgld.step_size = 100.0", "sgld.step_size = 0.0"), "sgld.step_size"),
    show("config-ema-inf", edited("train.ema_half_life_samples = 2000.0", "train.ema_half_life_samples = inf"), "ema"),
    show("config-channels-zero", edited("ebm.channels = [16, 32, 64]", "ebm.channels = [16, 0, 64]"), "ebm.channels"),
    show("config-channels-negative", edited("ebm.channels = [16, 32, 64]", "ebm.channels = [-16]"), "ebm.channels"),
    show("config-channels-empty", edited("ebm.channels = [16, 32, 64]", "ebm.channels = []"), "ebm.channels"),
    show("config-channels-huge", edited("ebm.channels = [16, 32, 64]", "ebm.channels = [16, 1000000]"), "channels"),
    show(
        "config-channels-too-many",
        edited("ebm.channels = [16, 32, 64]", "ebm.channels = [8, 8, 8, 8, 8, 8, 8]"),
        "channels",
    ),
    show("config-beta-one", tiny("train.ebm_optimizer.betas = [0.9, 1.0]"), "betas"),
    show("config-beta-negative", tiny("train.ebm_optimizer.betas = [-0.1, 0.9]"), "betas"),
    show("config-beta-single", tiny("train.ebm_optimizer.betas = [0.9]"), "betas"),
    show("config-lr-zero", edited("train.ebm_optimizer.lr = 5e-4", "train.ebm_optimizer.lr = 0.0"), "lr"),
    show("config-optimizer-name", tiny('train.ebm_optimizer.name = "lion"'), "train.ebm_optimizer.name"),
    show("config-image-size-huge", edited("data.image_size = 16", "data.image_size = 100000"), "data.image_size"),
    show("config-image-size-zero", edited("data.image_size = 16", "data.image_size = 0"), "data.image_size"),
    show("config-image-size-odd", edited("data.image_size = 16", "data.image_size = 18"), "data.image_size"),
    show(
        "config-batch-over-train-set",
        edited("train.iterations = 600\ntrain.batch_size = 64", "train.iterations = 600\ntrain.batch_size = 2048"),
        "training split",
    ),
    show(
        "config-batch-one",
        edited("train.iterations = 600\ntrain.batch_size = 64", "train.iterations = 600\ntrain.batch_size = 1"),
        "train.batch_size",
    ),
    show(
        "config-buffer-below-batch", edited("sgld.buffer_size = 1000\n", "sgld.buffer_size = 10\n"), "sgld.buffer_size"
    ),
    show("config-iterations-zero", edited("train.iterations = 600", "train.iterations = 0"), "train.iterations"),
    show("config-iterations-huge", edited("train.iterations = 600", "train.iterations = 10000000000"), "iterations"),
    show("config-reinit-prob", edited("sgld.reinit_prob = 0.02", "sgld.reinit_prob = 1.5"), "sgld.reinit_prob"),
    show("config-unknown-dataset", edited('data.dataset = "digits"', 'data.dataset = "mnist"'), "data.dataset"),
    show(
        "config-ood-twice",
        edited('data.ood = ["uniform_noise", "inverted", "interpolation"]', 'data.ood = ["inverted", "inverted"]'),
        "data.ood",
    ),
    show(
        "config-ood-unknown",
        edited('data.ood = ["uniform_noise", "inverted", "interpolation"]', 'data.ood = ["mnist"]'),
        "data.ood",
    ),
    show("config-unknown-method", tiny('crl.method = "simsiam"'), "crl.method"),
    show("config-plain-ebm-beta", tiny('crl.method = "none"'), "energy.beta = 0"),
    show("config-mae-patch", edited("crl.mae.patch_size = 2", "crl.mae.patch_size = 3"), "patch_size", "--exp mae"),
    show(
        "config-digits-cnn-on-cifar",
        edited('eval.fid_features = "auto"', 'eval.fid_features = "digits-cnn"'),
        "digits",
        "--exp baseline --profile paper",
    ),
    show("config-weights-bucket-only", tiny('eval.inception_weights = "s3://bucket"'), "eval.inception_weights"),
    show("config-weights-nul", tiny('eval.inception_weights = "a\\u0000b"'), "eval.inception_weights"),
    show("config-device", edited('runtime.device = "cpu"', 'runtime.device = "tpu"'), "runtime.device"),
    show("config-threads-negative", tiny("runtime.threads = -1"), "runtime.threads"),
    show("config-keep-zero", tiny("runtime.keep_checkpoints = 0"), "runtime.keep_checkpoints"),
    show("config-ood-files-type", tiny('runtime.ood_files = "a.npz"'), "runtime.ood_files"),
    show("config-defaults-not-table", "defaults = 3\n", "defaults: must be a table"),
    show("config-profiles-not-table", "profiles = 3\n", "profiles: must be a table"),
    show(
        "config-profile-not-table", "[profiles]\ntiny = 3\n[experiments.baseline]\n", "profiles.tiny: must be a table"
    ),
    show(
        "config-experiment-not-table",
        "[profiles.tiny]\n[experiments]\nbaseline = 1\n",
        "experiments.baseline: must be a table",
    ),
    show(
        "config-sweep-not-table", "sweep = 3\n" + edited("[sweep]\nseeds = [0, 1, 2]\n", ""), "sweep: must be a table"
    ),
    show("config-description-not-str", edited(TINY_HEADER, "[profiles.tiny]\ndescription = 3\n"), "description"),
    show("config-sweep-seeds-empty", edited("seeds = [0, 1, 2]", "seeds = []"), "[sweep]"),
    show("config-sweep-seeds-negative", edited("seeds = [0, 1, 2]", "seeds = [0, -1]"), "[sweep]"),
    show("config-sweep-seeds-duplicate", edited("seeds = [0, 1, 2]", "seeds = [1, 1]"), "[sweep]"),
    show("config-sweep-seeds-huge", edited("seeds = [0, 1, 2]", "seeds = [4294967296]"), "[sweep]"),
    show("config-sweep-seeds-float", edited("seeds = [0, 1, 2]", "seeds = [0.5]"), "[sweep]"),
    show("config-sweep-seeds-string", edited("seeds = [0, 1, 2]", 'seeds = "0,1"'), "[sweep]"),
    show("config-sweep-unknown-key", edited("seeds = [0, 1, 2]", "seeds = [0]\nseed = 1"), "[sweep]"),
    show("config-experiment-uppercase", TOML + "\n[experiments.Baseline2]\n", "names are lowercase"),
    show("config-experiment-slash", TOML + '\n[experiments."a/b"]\n', "names are lowercase"),
    show("config-experiment-dotdot", TOML + '\n[experiments.".."]\n', "names are lowercase"),
    show("config-profile-uppercase", TOML + "\n[profiles.Big]\n", "names are lowercase"),
    show("config-profile-slash", TOML + '\n[profiles."../x"]\n', "names are lowercase"),
    show("config-name-too-long", TOML + f"\n[experiments.{'a' * 64}]\n", "names are lowercase"),
    case(
        "config-name-list",
        "list --config bad.toml",
        "names are lowercase",
        {"bad.toml": TOML + '\n[experiments."a/b"]\n'},
    ),
    case(
        "config-bad-local",
        f"{LOCAL} --config bad.toml",
        "energy.beta",
        {"bad.toml": edited("energy.beta = 0.01", "energy.beta = inf")},
    ),
    case(
        "config-bad-worker",
        "worker --exp baseline --config bad.toml",
        "sgld.stepz",
        {"bad.toml": tiny("sgld.stepz = 1")},
    ),
    case(
        "config-bad-sweep",
        "sweep --exp baseline --seeds 0 --config bad.toml",
        "ebm.channels",
        {"bad.toml": edited("ebm.channels = [16, 32, 64]", "ebm.channels = [0]")},
    ),
    case(
        "config-bad-sweep-seeds",
        "sweep --config bad.toml",
        "[sweep]",
        {"bad.toml": edited("seeds = [0, 1, 2]", "seeds = [-3]")},
    ),
    case("config-bad-summarize", "summarize --config bad.toml --out out.csv", "not valid TOML", {"bad.toml": "[x\n"}),
    case("config-dir-summarize", "summarize --config adir --out out.csv", "is a directory", {"adir": None}),
    case("config-bad-render", "render --config bad.toml", "not UTF-8", {"bad.toml": b"\xff"}),
    case("config-missing-submit", "submit --config nope.toml", "no such config file"),
    case("config-bad-status", "status --config bad.toml", "unknown table", {"bad.toml": TOML + "[x]\n"}),
    case(
        "config-bad-cancel", "cancel --config bad.toml", "names are lowercase", {"bad.toml": TOML + '[profiles.".."]\n'}
    ),
    case("config-bad-logs", "logs --exp baseline --config bad.toml", "not valid TOML", {"bad.toml": "= 1"}),
    # --- flags --------------------------------------------------------------------------------------------
    case("unknown-command", "sumarize", "unknown command 'sumarize' (did you mean summarize?)"),
    case("unknown-flag-list", "list --verbose", "unknown flag --verbose"),
    case("unknown-flag-show", "show --exp baseline --sed 1", "unknown flag --sed (did you mean --seed?)"),
    case("unknown-flag-local", "local --exp baseline --stor runs", "unknown flag --stor (did you mean --store?)"),
    case("unknown-flag-worker", "worker --exp baseline --iteration 3", "unknown flag --iteration"),
    case("unknown-flag-sweep", "sweep --seed 1", "unknown flag --seed (did you mean --seeds?)"),
    case("unknown-flag-bench", "bench --iters 3", "unknown flag --iters"),
    case("unknown-flag-gpu-check", "gpu_check --devices cpu", "unknown flag --devices"),
    case("unknown-flag-gpu-check-dash", "gpu-check --cpu", "unknown flag --cpu"),
    case("unknown-flag-summarize", "summarize --stor runs", "unknown flag --stor"),
    case("unknown-flag-render", "render --experiment baseline", "unknown flag --experiment"),
    case("unknown-flag-submit", "submit --dryrun", "unknown flag --dryrun (did you mean --dry-run?)"),
    case("unknown-flag-status", "status --wach", "unknown flag --wach (did you mean --watch?)"),
    case("unknown-flag-logs", "logs --exp baseline --folow", "unknown flag --folow (did you mean --follow?)"),
    case("unknown-flag-cancel", "cancel --ex baseline", "unknown flag --ex (did you mean --exp?)"),
    case("negated-non-bool", "show --noexp", "unknown flag --noexp"),
    case("short-flag", "show -e baseline", "unexpected argument '-e'"),
    case("positional", "local baseline", "unexpected argument 'baseline'"),
    case("double-dash", "show --exp baseline --", "unexpected argument '--'"),
    case("cancel-positional", "cancel baseline", "unexpected argument 'baseline'"),
    case("bare-config", "show --exp baseline --config", "--config needs a value"),
    case("bare-config-list", "list --config", "--config needs a value"),
    case("bare-store", "local --exp baseline --store", "--store needs a value"),
    case("bare-store-then-flag", "local --store --exp baseline", "--store needs a value"),
    case("bare-store-summarize", "summarize --store", "--store needs a value"),
    case("bare-exp", "show --exp", "--exp needs a value"),
    case("bare-seed", "show --exp baseline --seed", "--seed needs a value"),
    case("bare-set", "local --exp baseline --set", "--set needs a value"),
    case("bare-ood", "local --exp baseline --ood", "--ood needs a value"),
    case("bare-image", "render --image", "--image needs a value"),
    case("bare-exp-logs", "logs --exp", "--exp needs a value"),
    case("seed-word", "show --exp baseline --seed abc", "--seed abc"),
    case("seed-negative", "show --exp baseline --seed -1", "--seed -1"),
    case("seed-float", "show --exp baseline --seed 1.5", "--seed 1.5"),
    case("seed-huge", "show --exp baseline --seed 99999999999", "--seed 99999999999"),
    case("seed-bool", "show --exp baseline --seed True", "--seed True"),
    case("seed-repeated", "show --exp baseline --seed 1 --seed 2", "--seed is given 2 times"),
    case("exp-repeated", "local --exp baseline --exp moco", "--exp is given 2 times"),
    case("store-repeated", "local --exp baseline --store a --store=b", "--store is given 2 times"),
    case("iterations-zero", "local --exp baseline --iterations 0", "--iterations 0"),
    case("iterations-word", "local --exp baseline --iterations ten", "--iterations ten"),
    case("iterations-huge", "worker --exp baseline --iterations 1e12", "--iterations"),
    case("checkpoint-every-zero", "local --exp baseline --checkpoint-every 0", "--checkpoint-every 0"),
    case("device-tpu", "local --exp baseline --device tpu", "--device tpu"),
    case("download-word", "local --exp baseline --download=maybe", "--download maybe"),
    case("exp-missing", "show", "--exp NAME is required"),
    case("exp-missing-local", "local", "--exp NAME is required"),
    case("exp-unknown", "show --exp basline", "unknown experiment 'basline' (did you mean baseline?"),
    case("exp-uppercase", "show --exp Baseline", "unknown experiment 'Baseline'"),
    case("exp-slash", "local --exp base/line", "unknown experiment 'base/line'"),
    case("exp-dotdot", "local --exp ../baseline", "unknown experiment '../baseline'"),
    case("profile-unknown", "show --exp baseline --profile huge", "unknown profile 'huge'"),
    case("profile-dotdot", "local --exp baseline --profile ../tiny", "unknown profile '../tiny'"),
    case("profile-uppercase", "sweep --profile TINY", "unknown profile 'TINY'"),
    case("sweep-parallel-zero", "sweep --parallel 0", "--parallel 0"),
    case("sweep-parallel-huge", "sweep --parallel 65", "--parallel 65"),
    case("sweep-seeds-word", "sweep --seeds a,b", "--seeds a,b"),
    case("sweep-seeds-negative", "sweep --seeds 0,-1", "--seeds 0,-1"),
    case("sweep-seeds-twice", "sweep --exp baseline --seeds 0,0", "listed twice"),
    case("sweep-exp-unknown", "sweep --exp baseline,nope --seeds 0", "unknown experiment 'nope'"),
    case("sweep-exp-twice", "sweep --exp baseline,baseline --seeds 0", "listed twice"),
    case("sweep-device", "sweep --device tpu", "--device tpu"),
    case("bench-preset", "bench --preset huge", "--preset huge"),
    case("bench-config-deprecated-name", "bench --config huge", "--config huge"),
    case("bench-iterations-zero", "bench --iterations 0", "--iterations 0"),
    case("bench-warmup-negative", "bench --warmup -1", "--warmup -1"),
    case("bench-device", "bench --device tpu", "--device tpu"),
    case("bench-plain-word", "bench --plain=yes", "--plain yes"),
    case("gpu-check-device", "gpu_check --device tpu", "--device tpu"),
    case("summarize-out-not-csv", "summarize --out out.txt", "ending in .csv"),
    case("summarize-out-url", "summarize --out s3://bucket/out.csv", "expected a local file path"),
    case("summarize-no-store", "summarize --store nothere --out out.csv", "no such directory"),
    case("summarize-store-is-file", "summarize --store afile --out out.csv", "afile", {"afile": "x"}),
    case("summarize-out-is-dir", "summarize --out adir.csv", "adir.csv", {"adir.csv": None}),
    case("summarize-out-under-file", "summarize --out afile/out.csv", "afile", {"afile": "x"}),
    case("summarize-plot-is-dir", "summarize --out out.csv", "out.png", {"out.png": None}),
    case("summarize-runs-csv-is-dir", "summarize --out out.csv", "out_runs.csv", {"out_runs.csv": None}),
    case("summarize-grid-is-dir", "summarize --out out.csv", "samples_grid.png", {"samples_grid.png": None}),
    case("summarize-tensorboard-is-file", "summarize --out out.csv", "tensorboard", {"runs/tensorboard": "x"}),
    case("summarize-empty-store", "summarize --store st --out out.csv", "no finished or running runs", {"st": None}),
    case("render-exp-unknown", "render --exp nope", "nope"),
    case("render-image-latest", "render --image example.com/clel:latest", "--image"),
    case("render-image-untagged", "render --image example.com/clel", "--image"),
    case("submit-dry-run-word", "submit --dry-run=maybe", "--dry-run maybe"),
    case("submit-replace-repeated", "submit --replace --replace", "--replace is given 2 times"),
    case("submit-exp-unknown", "submit --exp nope", "nope"),
    case("status-exp-unknown", "status --exp nope", "nope"),
    case("logs-no-exp", "logs", "--exp NAME is required"),
    case("logs-seed-word", "logs --exp baseline --seed x", "--seed x"),
    case("logs-seed-negative", "logs --exp baseline --seed -1", "--seed -1"),
    case("logs-follow-word", "logs --exp baseline --follow=sure", "--follow sure"),
    case("cancel-exp-repeated", "cancel --exp a --exp b", "--exp is given 2 times"),
    # --- --set --------------------------------------------------------------------------------------------
    case("set-unbalanced-quote", 'show --exp baseline --set "sgld.steps=\'20"', "No closing quotation"),
    case("set-unbalanced-double", "local --exp baseline --set 'runtime.data_root=\"/x'", "No closing quotation"),
    case("set-key-and-child", "show --exp baseline --set 'train.ebm_optimizer=1 train.ebm_optimizer.lr=2'", "both set"),
    case("set-key-and-child-repeated", "show --exp baseline --set sgld.steps=1 --set sgld.steps.x=2", "both set"),
    case("set-seed", "show --exp baseline --set seed=5", "seed: not a setting"),
    case("set-seed-local", "local --exp baseline --set seed=5", "seed: not a setting"),
    case("set-experiment", "show --exp baseline --set experiment=moco", "experiment: unknown key"),
    case(
        "set-unknown-key",
        "show --exp baseline --set sgld.stepz=3",
        "sgld.stepz: unknown key (did you mean sgld.steps?)",
    ),
    case("set-table-key", "show --exp baseline --set sgld=3", "sgld: unknown key"),
    case("set-no-equals", "show --exp baseline --set sgld.steps", "expected KEY=VALUE"),
    case("set-no-key", "show --exp baseline --set =3", "expected KEY=VALUE"),
    case("set-word-for-int", "show --exp baseline --set sgld.steps=abc", "sgld.steps"),
    case("set-steps-zero", "show --exp baseline --set sgld.steps=0", "sgld.steps"),
    case("set-beta-inf", "show --exp baseline --set energy.beta=inf", "energy.beta"),
    case("set-beta-nan", "show --exp baseline --set energy.beta=nan", "energy.beta"),
    case("set-step-size-inf", "local --exp baseline --set sgld.step_size=inf", "sgld.step_size"),
    case("set-channels-zero", "show --exp baseline --set ebm.channels=[0]", "ebm.channels"),
    case("set-channels-empty", "show --exp baseline --set ebm.channels=[]", "ebm.channels"),
    case("set-betas", "show --exp baseline --set train.ebm_optimizer.betas=[0.9,1.0]", "betas"),
    case("set-batch-over-train-set", "show --exp baseline --set train.batch_size=2000", "training split"),
    case("set-buffer-below-batch", "show --exp baseline --set sgld.buffer_size=10", "sgld.buffer_size"),
    case("set-image-size-huge", "show --exp baseline --set data.image_size=1000000", "data.image_size"),
    case("set-ood-files-type", "local --exp baseline --set runtime.ood_files=3", "runtime.ood_files"),
    case("set-method", "show --exp baseline --set crl.method=bogus", "crl.method"),
    case("set-dataset", "show --exp baseline --set data.dataset=mnist", "data.dataset"),
    case(
        "set-weights-bucket", "local --exp baseline --set eval.inception_weights=s3://bucket", "eval.inception_weights"
    ),
    case("set-deep-value", "show --exp baseline --set a=" + "[" * 3000 + "]" * 3000, "nested too deeply"),
    case("set-deep-key", "show --exp baseline --set " + ".".join(["a"] * 2000) + "=1", "nested deeper than"),
    # another --set is another run (its point is in the run id): the same run with another config is an edited file
    case(
        "config-existing-run-other-config",
        f"{LOCAL} --config changed.toml",
        "was started with config",
        {"changed.toml": edited("sgld.noise = 0.001", "sgld.noise = 0.002")},
    ),
    case("set-data-root-nul", "local --exp baseline --profile paper --set 'runtime.data_root=\"a\\u0000b\"'", "data"),
    case(
        "data-root-is-file",
        "local --exp baseline --profile paper --data-root afile --download",
        "afile",
        {"afile": "x"},
    ),
    case("data-root-missing", "local --exp baseline --profile paper --data-root nothere", "not found"),
    case("data-root-absent", "local --exp baseline --profile paper", "needs --data-root"),
    case("data-root-absent-sweep", "sweep --profile paper --seeds 0", "needs --data-root"),
    case("set-sweep", "sweep --exp baseline --seeds 0 --set sgld.stepz=1", "sgld.stepz: unknown key"),
    case("set-sweep-quote", 'sweep --exp baseline --seeds 0 --set "a=\'b"', "No closing quotation"),
    case("set-bench-seed", "bench --set seed=5", "seed: not a setting"),
    case("set-bench-channels", "bench --preset tiny --set ebm.channels=[0]", "ebm.channels"),
    case("set-worker", "worker --exp baseline --set sgld.steps=-3", "sgld.steps"),
    # --- .npz files ---------------------------------------------------------------------------------------
    case("npz-missing", f"{LOCAL} --ood missing.npz", "missing.npz: no such file"),
    case("npz-directory", f"{LOCAL} --ood adir.npz", "adir.npz", {"adir.npz": None}),
    case("npz-truncated", f"{LOCAL} --ood cut.npz", "cut.npz", {"cut.npz": GOOD_NPZ[: len(GOOD_NPZ) // 2]}),
    case("npz-malformed", f"{LOCAL} --ood junk.npz", "junk.npz", {"junk.npz": b"PK\x03\x04 this is no archive"}),
    case("npz-text", f"{LOCAL} --ood text.npz", "text.npz", {"text.npz": "x = 1\n"}),
    case("npz-empty-file", f"{LOCAL} --ood empty.npz", "empty.npz", {"empty.npz": b""}),
    case("npz-object", f"{LOCAL} --ood obj.npz", "obj.npz", {"obj.npz": "OBJECT"}),
    case("npz-float", f"{LOCAL} --ood f.npz", "must be uint8", {"f.npz": npz(x=np.zeros((4, 8, 8, 3), np.float32))}),
    case("npz-3d", f"{LOCAL} --ood s.npz", "must be uint8", {"s.npz": npz(x=np.zeros((4, 8, 8), np.uint8))}),
    case("npz-2-channels", f"{LOCAL} --ood c.npz", "must be uint8", {"c.npz": npz(x=np.zeros((4, 8, 8, 2), np.uint8))}),
    case("npz-no-images", f"{LOCAL} --ood n.npz", "must be uint8", {"n.npz": npz(x=np.zeros((0, 8, 8, 3), np.uint8))}),
    case("npz-no-x", f"{LOCAL} --ood y.npz", "no array 'x'", {"y.npz": npz(y=np.zeros((4, 8, 8, 3), np.uint8))}),
    case("npz-npy", f"{LOCAL} --ood a.npz", "not a .npz archive", {"a.npz": "NPY"}),
    case("npz-huge-header", f"{LOCAL} --ood bomb.npz", "more than", {"bomb.npz": npz_bomb()}),
    case("npz-raw-member", f"{LOCAL} --ood raw.npz", "not a .npy array", {"raw.npz": raw_member_npz()}),
    case("npz-dev-zero", f"{LOCAL} --ood /dev/zero", "no such file"),
    case("npz-via-set", f"{LOCAL} --set 'runtime.ood_files=[\"missing.npz\"]'", "missing.npz: no such file"),
    case("npz-second-of-list", f"{LOCAL} --ood good.npz,missing.npz", "missing.npz", {"good.npz": GOOD_NPZ}),
    case("npz-worker", "worker --exp baseline --ood f.npz", "must be uint8", {"f.npz": npz(x=np.ones((2, 4, 4, 3)))}),
    case(
        "npz-sweep",
        "sweep --exp baseline --seeds 0,1 --set 'runtime.ood_files=[\"missing.npz\"]'",
        "missing.npz: no such file",
    ),
    # --- stores -------------------------------------------------------------------------------------------
    case("store-scheme", f"{LOCAL} --store gs://bucket/runs", "unsupported scheme"),
    case("store-scheme-http", f"{LOCAL} --store http://host/runs", "unsupported scheme"),
    case("store-empty", f"{LOCAL} --store=", "--store"),
    case("store-is-file", f"{LOCAL} --store afile", "not a writable directory", {"afile": "x"}),
    case("store-bad-bucket", f"{LOCAL} --store s3://Bad_Bucket/runs", "expected s3://bucket"),
    case("store-bad-prefix", f"{LOCAL} --store s3://bucket/../runs", "expected s3://bucket"),
    case(
        "store-unreachable",
        f"{LOCAL} --store s3://bucket/runs",
        "cannot reach",
        env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"},
    ),
    case(
        "store-endpoint-no-scheme",
        f"{LOCAL} --store s3://bucket/runs",
        "S3 endpoint",
        env={"AWS_ENDPOINT_URL_S3": "not a url"},
    ),
    case(
        "store-missing-bucket",
        f"{LOCAL} --store s3://no-such-bucket/runs",
        "no-such-bucket",
        env={"AWS_ENDPOINT_URL_S3": "{s3}"},
    ),
    case(
        "store-max-attempts",
        f"{LOCAL} --store s3://bucket/runs",
        "CLEL_S3_MAX_ATTEMPTS",
        env={"CLEL_S3_MAX_ATTEMPTS": "many"},
    ),
    case(
        "store-addressing",
        f"{LOCAL} --store s3://bucket/runs",
        "CLEL_S3_ADDRESSING",
        env={"CLEL_S3_ADDRESSING": "sideways"},
    ),
    case("store-cache-is-file", f"{LOCAL}", "CLEL_CACHE", {"afile": "x"}, env={"CLEL_CACHE": "afile"}),
    case("store-config-hash", LOCAL.replace("local", "worker", 1), "differs", env={"CLEL_CONFIG_HASH": "0123456789ab"}),
    case("store-run-dir-is-file", f"{LOCAL} --store st", "is not a directory", {f"st/{TINY_RUN_ID}": "x"}),
    case("store-ckpt-is-file", f"{LOCAL} --store st", "ckpt is not a directory", {f"st/{TINY_RUN_ID}/ckpt": "x"}),
    case(
        "store-config-is-dir",
        f"{LOCAL} --store st",
        "config.json is not a file",
        {f"st/{TINY_RUN_ID}/config.json": None},
    ),
    case("store-latest-is-dir", f"{LOCAL} --store st", "LATEST is not a file", {f"st/{TINY_RUN_ID}/ckpt/LATEST": None}),
    case(
        "store-metrics-is-dir",
        f"{LOCAL} --store st",
        "metrics.jsonl is not a file",
        {f"st/{TINY_RUN_ID}/metrics.jsonl": None},
    ),
    case(
        "store-samples-is-dir",
        f"{LOCAL} --store st",
        "samples.png is not a file",
        {f"st/{TINY_RUN_ID}/samples.png": None},
    ),
    case(
        "store-result-is-dir",
        f"{LOCAL} --store st",
        "result.json is not a file",
        {f"st/{TINY_RUN_ID}/result.json": None},
    ),
    case("store-inside-a-file", f"{LOCAL} --store runs/notes.txt/deeper", "not a writable directory"),
    case("store-sweep-scheme", "sweep --exp baseline --seeds 0 --store gs://x/y", "unsupported scheme"),
    case(
        "store-sweep-missing-bucket",
        "sweep --exp baseline --seeds 0 --store s3://no-such-bucket",
        "no-such-bucket",
        env={"AWS_ENDPOINT_URL_S3": "{s3}"},
    ),
    case("store-summarize-scheme", "summarize --store gs://x/y --out out.csv", "unsupported scheme"),
    case(
        "store-summarize-missing-bucket",
        "summarize --store s3://no-such-bucket --out out.csv",
        "no-such-bucket",
        env={"AWS_ENDPOINT_URL_S3": "{s3}"},
    ),
    case(
        "store-summarize-unreachable",
        "summarize --store s3://bucket --out out.csv",
        "cannot reach",
        env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"},
    ),
    case(
        "weights-missing",
        f'{LOCAL} --set \'eval.fid_features="inception" eval.inception_weights="nope.pth"\'',
        "nope.pth: no such file",
    ),
    case(
        "weights-wrong",
        f'{LOCAL} --set \'eval.fid_features="inception" eval.inception_weights="w.pth"\'',
        "sha256",
        {"w.pth": b"not the weights"},
    ),
    case(
        "weights-directory",
        f'{LOCAL} --set \'eval.fid_features="inception" eval.inception_weights="adir"\'',
        "adir",
        {"adir": None},
    ),
    case(
        "weights-s3-missing",
        f'{LOCAL} --set \'eval.fid_features="inception" eval.inception_weights="s3://no-such-bucket/w.pth"\'',
        "no-such-bucket",
        env={"AWS_ENDPOINT_URL_S3": "{s3}"},
    ),
    case("device-cuda-without-gpu", f"{LOCAL} --device cuda", "no CUDA device", marks=NEEDS_NO_GPU),
    case("bench-cuda-without-gpu", "bench --device cuda", "no CUDA device", marks=NEEDS_NO_GPU),
    case("gpu-check-without-gpu", "gpu_check", "no CUDA device", marks=NEEDS_NO_GPU),
    # --- [cluster] ----------------------------------------------------------------------------------------
    case("cluster-missing", "render --config bad.toml", "no [cluster] table", {"bad.toml": TOML.split("[cluster]")[0]}),
    case(
        "cluster-not-table",
        "render --config bad.toml",
        "cluster",
        {"bad.toml": "cluster = 1\n" + TOML.split("\n[cluster]")[0]},
    ),
    case(
        "cluster-image-latest",
        "render --config bad.toml",
        "image",
        {"bad.toml": cluster("clel-runner:0.1.0", "clel-runner:latest")},
    ),
    case(
        "cluster-namespace",
        "submit --config bad.toml",
        "namespace",
        {"bad.toml": cluster('namespace = "clel"', 'namespace = "Bad_NS"')},
    ),
    case(
        "cluster-unknown-key", "render --config bad.toml", "gpu", {"bad.toml": cluster("gpus = 1", "gpus = 1\ngpu = 2")}
    ),
    case("cluster-gpus-negative", "render --config bad.toml", "gpus", {"bad.toml": cluster("gpus = 1", "gpus = -1")}),
    case("cluster-gpus-string", "submit --config bad.toml", "gpus", {"bad.toml": cluster("gpus = 1", 'gpus = "1"')}),
    case(
        "cluster-memory",
        "render --config bad.toml",
        "memory",
        {"bad.toml": cluster('memory = "32Gi"', 'memory = "lots"')},
    ),
    case("cluster-cpu", "render --config bad.toml", "cpu", {"bad.toml": cluster('cpu = "8"', 'cpu = "eight"')}),
    case(
        "cluster-store",
        "render --config bad.toml",
        "store",
        {"bad.toml": cluster('store = "s3://clel-runs/ablation"', 'store = "gs://x/y"')},
    ),
    case(
        "cluster-addressing",
        "render --config bad.toml",
        "s3_addressing",
        {"bad.toml": cluster('s3_addressing = "auto"', 's3_addressing = "sideways"')},
    ),
    case(
        "cluster-profile",
        "submit --config bad.toml",
        "profile",
        {"bad.toml": cluster('profile = "paper"', 'profile = "huge"')},
    ),
    case(
        "cluster-experiments",
        "render --config bad.toml",
        "nope",
        {"bad.toml": cluster("experiments = []", 'experiments = ["nope"]')},
    ),
    case(
        "cluster-seeds",
        "render --config bad.toml",
        "seed",
        {"bad.toml": cluster("# seeds = [0, 1, 2]", "seeds = [-1]")},
    ),
    case(
        "cluster-overrides-seed",
        "render --config bad.toml",
        "seed",
        {"bad.toml": cluster("overrides = []", 'overrides = ["seed=5"]')},
    ),
    case(
        "cluster-overrides-unknown",
        "submit --config bad.toml",
        "sgld.stepz",
        {"bad.toml": cluster("overrides = []", 'overrides = ["sgld.stepz=1"]')},
    ),
    case(
        "cluster-sweep-label",
        "status --config bad.toml",
        "sweep",
        {"bad.toml": cluster('sweep = "ablation"', 'sweep = "a b/c"')},
    ),
    case(
        "cluster-deadline",
        "render --config bad.toml",
        "active_deadline_seconds",
        {"bad.toml": cluster("active_deadline_seconds = 345600", "active_deadline_seconds = 0")},
    ),
    case(
        "cluster-secret",
        "cancel --config bad.toml",
        "credentials_secret",
        {"bad.toml": cluster('credentials_secret = "clel-s3"', 'credentials_secret = "Clel S3"')},
    ),
    case(
        "cluster-tolerations",
        "logs --exp baseline --config bad.toml",
        "tolerations",
        {
            "bad.toml": cluster(
                'tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]',
                'tolerations = "all"',
            )
        },
    ),
    case(
        "cluster-node-selector",
        "render --config bad.toml",
        "node_selector",
        {"bad.toml": cluster("node_selector = {}", "node_selector = { zone = 3 }")},
    ),
    case(
        "cluster-seeds-huge",
        "render --config bad.toml",
        "seed",
        {"bad.toml": cluster("# seeds = [0, 1, 2]", "seeds = [99999999999]")},
    ),
    case(
        "cluster-seeds-twice",
        "render --config bad.toml",
        "seed",
        {"bad.toml": cluster("# seeds = [0, 1, 2]", "seeds = [1, 1]")},
    ),
    case(
        "cluster-experiments-twice",
        "render --config bad.toml",
        "[cluster]: experiments: baseline is listed twice",
        {"bad.toml": cluster("experiments = []", 'experiments = ["baseline", "baseline"]')},
    ),
    case(
        "cluster-overrides-value",
        "render --config bad.toml",
        "ebm.channels",
        {"bad.toml": cluster("overrides = []", 'overrides = ["ebm.channels=[0]"]')},
    ),
    case(
        "cluster-overrides-string",
        "render --config bad.toml",
        "overrides",
        {"bad.toml": cluster("overrides = []", 'overrides = "sgld.steps=1"')},
    ),
    case(
        "cluster-overrides-quote",
        "render --config bad.toml",
        "quotation",
        {"bad.toml": cluster("overrides = []", 'overrides = ["a=\'b"]')},
    ),
    case(
        "cluster-pull-secret",
        "render --config bad.toml",
        "image_pull_secrets",
        {"bad.toml": cluster("image_pull_secrets = []", 'image_pull_secrets = ["Not_A_Name"]')},
    ),
    case(
        "cluster-shm",
        "render --config bad.toml",
        "shm_size",
        {"bad.toml": cluster('shm_size = "8Gi"', 'shm_size = "lots"')},
    ),
    case("cluster-cpu-negative", "render --config bad.toml", "cpu", {"bad.toml": cluster('cpu = "8"', 'cpu = "-1"')}),
    case(
        "cluster-gpu-resource",
        "render --config bad.toml",
        "gpu_resource",
        {"bad.toml": cluster('gpu_resource = "nvidia.com/gpu"', 'gpu_resource = "a b"')},
    ),
    case(
        "cluster-run-as-root",
        "render --config bad.toml",
        "run_as_user",
        {"bad.toml": cluster("gpus = 1", "gpus = 1\nrun_as_user = 0")},
    ),
    case(
        "cluster-sweep-empty",
        "render --config bad.toml",
        "sweep",
        {"bad.toml": cluster('sweep = "ablation"', 'sweep = ""')},
    ),
    case(
        "cluster-endpoint-scheme",
        "render --config bad.toml",
        "s3_endpoint",
        {"bad.toml": cluster('s3_endpoint = ""', 's3_endpoint = "ftp://minio:9000"')},
    ),
    case(
        "cluster-region",
        "render --config bad.toml",
        "s3_region",
        {"bad.toml": cluster('s3_region = "us-east-1"', 's3_region = "us east 1"')},
    ),
    case(
        "cluster-store-bucket",
        "render --config bad.toml",
        "store",
        {"bad.toml": cluster('store = "s3://clel-runs/ablation"', 'store = "s3://Clel_Runs/x"')},
    ),
    case(
        "cluster-store-dotdot",
        "render --config bad.toml",
        "store",
        {"bad.toml": cluster('store = "s3://clel-runs/ablation"', 'store = "s3://clel-runs/../x"')},
    ),
    case(
        "cluster-toleration-key",
        "render --config bad.toml",
        "tolerations",
        {
            "bad.toml": cluster(
                'tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]',
                "tolerations = [{ key = 1 }]",
            )
        },
    ),
    case(
        "cluster-node-selector-key",
        "render --config bad.toml",
        "node_selector",
        {"bad.toml": cluster("node_selector = {}", 'node_selector = { "a b" = "x" }')},
    ),
    case(
        "cluster-ttl-negative",
        "render --config bad.toml",
        "ttl_seconds_after_finished",
        {"bad.toml": cluster("ttl_seconds_after_finished = 604800", "ttl_seconds_after_finished = -1")},
    ),
    case("cluster-image-flag-digest", "render --image example.com/clel@sha256:abc", "--image"),
    case("config-empty-path", "show --exp baseline --config=", "--config"),
    case("config-empty-path-list", "list --config=", "--config"),
    case("store-cache-empty", LOCAL, "CLEL_CACHE is set but empty", env={"CLEL_CACHE": ""}),
    case("store-cache-under-file", LOCAL, "CLEL_CACHE", {"afile": "x"}, env={"CLEL_CACHE": "afile/cache"}),
    case(
        "store-cache-sweep", "sweep --exp baseline --seeds 0", "CLEL_CACHE", {"afile": "x"}, env={"CLEL_CACHE": "afile"}
    ),
    case(
        "weights-name-too-long",
        f'{LOCAL} --set \'eval.fid_features="inception" eval.inception_weights="{"w" * 300}"\'',
        "cannot be read",
    ),
    case("npz-name-too-long", f"{LOCAL} --ood {'o' * 300}.npz", "cannot be read"),
    case("data-root-too-long", f"local --exp baseline --profile paper --data-root {'d' * 300}", "not a usable path"),
    case("config-path-too-long", f"show --exp baseline --config {'c' * 300}.toml", "cannot be read"),
    case("store-name-too-long", f"{LOCAL} --store {'s' * 300}", "not a writable directory"),
    case("set-list-item", "show --exp baseline --set data.ood=[1,[2]]", "--set: data.ood.0"),
    case("set-list-unclosed", "show --exp baseline --set 'runtime.ood_files=[\"a.npz\",'", "--set: runtime.ood_files"),
    case("set-dot-dot-key", "show --exp baseline --set sgld..steps=3", "sgld..steps: unknown key"),
    case("set-quoted-key", "show --exp baseline --set '\"sgld.steps\"=3'", "unknown key"),
    case(
        "config-list-item",
        "show --exp baseline --config bad.toml",
        "[profiles.tiny]: data.ood.1",
        {"bad.toml": edited('data.ood = ["uniform_noise", "inverted", "interpolation"]', 'data.ood = ["inverted", 3]')},
    ),
]


# --- running a case ------------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch, minimal_finished_store) -> Path:
    return bad_input_workdir(tmp_path, monkeypatch, minimal_finished_store)


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_one_line_and_exit_2_and_changes_nothing(bad: Case, workdir, monkeypatch, capsys, request):
    write_files(workdir, bad.files)
    for name, value in bad.env.items():
        if "{s3}" in value:
            value = value.replace("{s3}", request.getfixturevalue("moto_server"))
        monkeypatch.setenv(name, value)
    kube = install(monkeypatch, workdir.parent) if bad.argv[0] in CLUSTER_COMMANDS else None
    before = snapshot(workdir)
    assert_refused(run_main(bad.argv, capsys), bad.expect)
    assert snapshot(workdir) == before
    if kube is not None:
        assert kube.requests == []


def test_the_fake_cluster_answers_a_good_status(workdir, monkeypatch, capsys):
    """The zero-request checks mean something: a good command does reach the fake API."""
    kube = install(monkeypatch, workdir.parent)
    code, out, err = run_main(["status"], capsys)
    assert code == 0, err
    assert "no Jobs match" in out
    assert [r.method for r in kube.requests] == ["GET"]


@pytest.mark.parametrize(
    "argv",
    [["cancel", "--ex", "baseline"], ["submit", "--dryrun"], ["logs", "--exp", "baseline", "--folow"]],
    ids=["cancel", "submit", "logs"],
)
def test_a_misspelled_flag_sends_no_request(argv, workdir, monkeypatch, capsys):
    kube = install(monkeypatch, workdir.parent)
    code, _, err = run_main(argv, capsys)
    assert code == 2 and "unknown flag" in err
    assert kube.requests == []


def test_set_is_repeatable_and_accumulates(workdir, capsys):
    """The refusals above leave the good uses alone: repeated --set flags (and several in one) all apply."""
    argv = [
        "show",
        "--exp",
        "baseline",
        "--set",
        "sgld.steps=7 sgld.noise=0.01",
        "--set",
        "runtime.ood_files=['a.npz']",
    ]
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    shown = __import__("json").loads(out)
    assert (shown["sgld"]["steps"], shown["sgld"]["noise"], shown["runtime"]["ood_files"]) == (7, 0.01, ["a.npz"])


def test_there_are_many_cases_across_every_command():
    commands = {param.values[0].argv[0].replace("-", "_") for param in CASES}
    assert len({param.id for param in CASES}) == len(CASES)
    assert len(CASES) >= 150
    every = {"list", "show", "local", "worker", "sweep", "bench", "gpu_check", "summarize"} | set(CLUSTER_COMMANDS)
    assert every <= commands
