"""The "Train" panel: ``edgecalc train | eval | sweep | compare | fit-verifier``.

Thin: options here (the recipe option group shared through edgecalc/cli/options.py), the bodies in
edgecalc/train/commands.py, edgecalc/eval/commands.py and edgecalc/studies/commands.py (sweep,
compare). The bodies print progress on stdout and raise
CommandError on bad input; :func:`exit_with` prints that on stderr (``error: MESSAGE``) and exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecalc.cli import options as opt
from edgecalc.cli.errors import exit_with
from edgecalc.studies.compare import DEFAULT_METHODS as COMPARE_DEFAULT, FIGURES as COMPARE_FIGURES, METHODS as COMPARE_METHODS
from edgecalc.model.registry import NETWORKS
from edgecalc.model.shipped import SHIPPED_WEIGHTS
from edgecalc.run_folder import CONFIG_FILE, EVAL_DIR, METRICS_FILE, SCORES_FILE, best_weights
from edgecalc.train.config import TRAIN_DEFAULTS
from edgecalc.train.focus_verifier import KEEP_FALSE as VERIFIER_KEEP_FALSE, THRESHOLD as VERIFIER_THRESHOLD

PANEL = "Train"


@opt.with_recipe_options
def train_cmd(
    data: Optional[Path] = typer.Argument(None, help="Data-set folder (images/, masks/, labels.csv); omit with --resume."),
    network: opt.Network = typer.Option(TRAIN_DEFAULTS["network"], "--network", help="The network trained (docs/comparison.md): " + "; ".join(
        f"{k}: {v.summary} [{v.supervision}]" for k, v in NETWORKS.items()) + ". two-stage networks use --mask-fraction; "
        "all-masks (alexnet-seg) trains one stage on every mask, labels (sononet-ag, vgg16, resnet50) one stage on "
        "image labels only, whatever --mask-fraction says."),
    mask_fraction: float = opt.MASK_FRACTION,
    recipe_options: dict = None,  # the recipe option group (opt.with_recipe_options)
    fold: int = typer.Option(TRAIN_DEFAULTS["fold"], "--fold", min=0, help="Which cross-validation fold is the test set (0-based)."),
    folds: int = typer.Option(TRAIN_DEFAULTS["folds"], "--folds", min=2, help="Number of cross-validation folds (the paper: 5)."),
    val_fraction: float = typer.Option(TRAIN_DEFAULTS["val_fraction"], "--val-fraction", help="Share of the training fold held out to pick the best round."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder; default runs/<preset><size>-p<fraction>-fold<k>."),
    stage1_data: Optional[Path] = typer.Option(None, "--stage1-data", help="Sim-to-real: train stage one (DS-AGnet) on this "
                                               "folder's pixel masks (e.g. the phantom; --mask-fraction of them) instead of "
                                               "DATA's; stage two then learns DATA's image labels with stage one's pseudo "
                                               "masks. DATA needs no masks (docs/real-data.md)."),
    stage1_weights: Optional[Path] = typer.Option(None, "--stage1-weights", help="Skip training stage one: take these "
                                                  f"weights as its result (a run folder's {best_weights('', 1)}, a DS-AGnet file, or "
                                                  "a CS-AGnet's encoder + decoder, e.g. the shipped weights)."),
    init_weights: Optional[Path] = typer.Option(None, "--init-weights", help="Stage two starts from these CS-AGnet "
                                                "weights (a run folder or .safetensors): fine-tuning. With --mask-fraction "
                                                "0 and no stage one it learns image labels only."),
    mix_data: Optional[Path] = typer.Option(None, "--mix-data", help="Stage two also draws --mix-ratio of every batch "
                                            "from this folder (e.g. the phantom), with its true masks and labels. With --linear-probe its "
                                            "crops join the head's fit instead (one head for both data sets)."),
    mix_ratio: Optional[float] = typer.Option(None, "--mix-ratio", min=0.0, max=0.95, help="Share of every stage-two "
                                              "batch taken from --mix-data (default 0.25 when --mix-data is given); with --linear-probe, "
                                              "--mix-data's share of the fit's total sample weight."),
    linear_probe: bool = typer.Option(False, "--linear-probe", help="With --init-weights and --mask-fraction 0: no "
                                      "gradient steps; fit only a linear score head on the frozen encoder's pooled "
                                      "features (L2 logistic regression, its strength chosen by patient-grouped inner "
                                      "cross-validation on the training images). The small-real-data transfer that "
                                      "scores best on DDTI (docs/real-data.md); mask and attention stay the starting "
                                      "weights'."),
    probe_mask: bool = typer.Option(True, "--probe-mask/--no-probe-mask", help="With --linear-probe: let the inner "
                                    "cross-validation also try the segmentation mask's mean and maximum over the "
                                    "pooling ellipse as two more features (on DDTI it chose them in every fold); "
                                    "--no-probe-mask: encoder features only, as the shipped default was fitted."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from its last checkpoint "
                                          f"(with its own {CONFIG_FILE}; other options are ignored)."),
    no_progress: bool = opt.NO_PROGRESS,
    threads: int = opt.THREADS,
) -> None:
    """Two-stage collaborative training: DS-AGnet on the masked fraction, pseudo masks, then CS-AGnet.

    Resumable: interrupt it (Ctrl-C, kill) and continue with --resume RUN_DIR; the run's log grows by a row every round.
    Real data without masks: --mask-fraction 0 (image labels only), --init-weights (fine-tune),
    --init-weights with --linear-probe (a linear score head on the frozen encoder), or
    --stage1-data PHANTOM_DIR / --stage1-weights (sim-to-real two stages).
    """
    from edgecalc.train.commands import train_cmd as run_train

    sources = {"stage1_data": stage1_data, "stage1_weights": stage1_weights, "init_weights": init_weights, "mix_data": mix_data}
    exit_with(lambda: run_train(
        resume, threads=threads, data=data, network=network, mask_fraction=mask_fraction, fold=fold, folds=folds, val_fraction=val_fraction,
        out=out, **recipe_options, progress=not no_progress,
        **{k: str(v) for k, v in sources.items() if v is not None},
        mix_ratio=mix_ratio if mix_ratio is not None else (0.25 if mix_data is not None else 0.0),
        linear_probe=linear_probe, linear_probe_mask=probe_mask,
    ))


def eval_cmd(
    run_dir: Optional[Path] = typer.Argument(None, help="Run folder of `edgecalc train`, or the name of shipped weights "
                                            f"({', '.join(SHIPPED_WEIGHTS)}; docs/model-card.md); omit to evaluate the "
                                            "shipped default weights."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data-set folder to evaluate on; default the run's own test split "
                                        "(required without RUN_DIR). Where it holds images the weights were fitted on "
                                        "(the run's own data folder, or the ids of a shipped file's .fitted.json) "
                                        f"a warning says how many, and {METRICS_FILE} records them as seen_in_fit."),
    out: Optional[Path] = typer.Option(None, "--out", help=f"Folder for {METRICS_FILE}, {SCORES_FILE}, roc.png, attention.png; "
                                       f"default RUN_DIR/{EVAL_DIR} (RUN_DIR/{EVAL_DIR}/<data name> with --data), or "
                                       "edgecalc-eval/ for the shipped weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Accuracy, sensitivity, specificity, AUC, Dice/IoU, confusion matrix, ROC and attention figures."""
    from edgecalc.eval.commands import eval_command

    exit_with(lambda: eval_command(run_dir, data, out, device))


@opt.with_recipe_options
def sweep_cmd(
    data: Path = typer.Argument(..., help="Data-set folder."),
    fractions: opt.Items = typer.Option("0.1,0.3,0.5,1.0", "--fractions", parser=opt.FRACTIONS_LIST, metavar="P,...",
                                        help="Comma-separated pixel-mask fractions p, each in (0, 1]."),
    folds: int = typer.Option(TRAIN_DEFAULTS["folds"], "--folds", min=2, help="Number of cross-validation folds."),
    fold_ids: Optional[opt.Items] = opt.FOLD_IDS,
    out: Path = typer.Option(Path("runs/sweep"), "--out", help="Sweep folder: one run per p<fraction>/fold<k>, table1.md, roc.png."),
    collect_only: bool = typer.Option(False, "--collect-only",
                                      help="Train nothing: write the table from the figures the run folders already hold "
                                           f"({METRICS_FILE}, {EVAL_DIR}/{SCORES_FILE}, {CONFIG_FILE}), e.g. folds "
                                           "trained on other machines and copied here without their weights. A missing run is "
                                           "an error naming it."),
    recipe_options: dict = None,  # the recipe option group (opt.with_recipe_options)
    no_progress: bool = opt.NO_PROGRESS,
    threads: int = opt.THREADS,
) -> None:
    """Train + eval per mask fraction and fold: the paper's Table 1 (Markdown, with paired per-fold differences
    against the default --mask-fraction) and Fig. 7 (one ROC per fraction)."""
    from edgecalc.studies.commands import sweep_command

    fold_ids = opt.folds_to_run(fold_ids, folds)
    exit_with(lambda: sweep_command(
        data, fractions, folds, fold_ids, out, threads=threads, **recipe_options, progress=not no_progress,
        collect_only=collect_only,
    ))


@opt.with_recipe_options
def compare_cmd(
    data: Path = typer.Argument(..., help="Data-set folder (e.g. ../shared/data/ddti-calc: real crops, image labels, patients)."),
    methods: opt.Items = typer.Option(",".join(COMPARE_DEFAULT), "--methods", parser=opt.METHODS_LIST, metavar="METHOD,...",
                                      help="Comma-separated, from: " + "; ".join(
                                          f"{k}: {v.summary}" for k, v in COMPARE_METHODS.items()) + "."),
    folds: int = typer.Option(TRAIN_DEFAULTS["folds"], "--folds", min=2, help="Cross-validation folds (grouped by the patient column when present)."),
    fold_ids: Optional[opt.Items] = opt.FOLD_IDS,
    out: Path = typer.Option(Path("runs/compare"), "--out", help="Folder: <method>/fold<k>/, comparison.md, roc.png, scores.csv."),
    pretrained: Optional[Path] = typer.Option(None, "--pretrained", help="Run folder or weights of the pretrained (phantom) "
                                              "model: zero-shot scores it, fine-tune starts from it, sim-to-real takes its stage one."),
    phantom: Optional[Path] = typer.Option(None, "--phantom", help="Phantom data-set folder: sim-to-real trains stage one on "
                                           "it when --pretrained is not given, and the +mix methods mix it in at --mix-ratio."),
    mix_ratio: float = typer.Option(0.25, "--mix-ratio", min=0.05, max=0.95, help="The +mix methods: share of every "
                                    "stage-two batch drawn from --phantom (linear-probe+mix: its share of the fit's sample weight)."),
    end_to_end: Optional[bool] = typer.Option(None, "--end-to-end/--no-end-to-end", help="Also score DATA's whole frames "
                                              "(full/<id>.png + full/boxes.csv) through the shipped locator and each "
                                              "fold's model (default: when DATA has them)."),
    locator_data: Optional[Path] = typer.Option(None, "--locator-data", help="The frames the shipped locator trained "
                                                "on (e.g. ../shared/data/ddti-nodules, with patients.csv): the whole-frame "
                                                "figures are then also given for patients the locator never trained on."),
    mask_fraction: float = opt.MASK_FRACTION,
    collect_only: bool = typer.Option(False, "--collect-only",
                                      help="Train and score nothing: write the table from the figures the method folders "
                                           "already hold (a trained method's " + " and ".join(COMPARE_FIGURES["train"])
                                           + ", a rule's " + COMPARE_FIGURES["rule"][0] + "), e.g. folds trained in other "
                                           "sessions and copied here without their weights; attention.png is redrawn only "
                                           "when every network's weights of the first fold are there. A missing folder is an error naming it."),
    recipe_options: dict = None,  # the recipe option group (opt.with_recipe_options)
    no_progress: bool = opt.NO_PROGRESS,
    threads: int = opt.THREADS,
) -> None:
    """Every method on the same folds: pooled and per-fold AUC (patient-bootstrap CI), accuracy, sensitivity,
    specificity, with and without text-bearing crops and per kind; ROC figure; resumable like sweep.

    The paper's Table 2: --methods csagnet,vgg-unet,alexnet-seg,sononet-ag,vgg16,resnet50,ci,otsu (paired
    per-fold differences against csagnet, attention hit rates, attention.png; docs/comparison.md).
    """
    from edgecalc.studies.commands import compare_command

    fold_ids = opt.folds_to_run(fold_ids, folds)
    exit_with(lambda: compare_command(
        data, methods, folds, fold_ids, out, pretrained=pretrained, phantom=phantom, mix_ratio=mix_ratio, threads=threads,
        end_to_end=end_to_end, locator_data=locator_data, collect_only=collect_only,
        mask_fraction=mask_fraction, **recipe_options, progress=not no_progress,
    ))


def fit_verifier_cmd(
    data: Path = typer.Argument(..., help="Phantom data set with its truth (edgecalc data phantom: images/, masks/, "
                                "nodules/, meta.jsonl); the shipped verifier: 4,000 crops of seed 91."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="The export bundle whose model's probabilities the "
                                          "verifier reads, and which it is written into (focus_verifier.safetensors "
                                          "+ the manifest's focus_verifier entry); default the shipped one."),
    threshold: float = typer.Option(VERIFIER_THRESHOLD, "--threshold", help="A candidate is a focus at this probability or above "
                                    "(the default: chosen on phantom seed 78, docs/quantification.md)."),
    keep_false: float = typer.Option(VERIFIER_KEEP_FALSE, "--keep-false", help="Share of the false candidates kept for fitting "
                                     "(there are some 50 for each true one); every true one is kept."),
    backend: str = typer.Option("onnxruntime", "--backend", help="Inference engine the model runs on while collecting."),
    no_progress: bool = opt.NO_PROGRESS,
) -> None:
    """Fit the focus verifier (new foci the mask misses, from the crop's own pixels) on a phantom through a
    bundle's model, and write it into the bundle."""
    from edgecalc.train.focus_verifier import fit_verifier_command

    exit_with(lambda: fit_verifier_command(bundle, data, threshold, keep_false, backend, not no_progress))


#: This panel's commands by name, in the order --help lists them.
COMMANDS = {"train": train_cmd, "eval": eval_cmd, "sweep": sweep_cmd, "compare": compare_cmd,
            "fit-verifier": fit_verifier_cmd}
