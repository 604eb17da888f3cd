"""The wording of a report's captions and fixed sentences: one named template per caption, filled with named
fields by the code that computes them (every module of ``swin_lit.report``).

A template is a ``string.Template`` (``$field``); ``Caption.fill`` takes exactly the template's fields, so a caption
and its caller cannot drift apart silently (a missing or an unexpected field raises). The fields are text the
caller already formatted: measured numbers through ``fmt.num`` / ``fmt.format_p`` / ``fmt.span``, verdicts through
``fmt.verdict_text``, spec settings (α, a margin) through ``setting`` below. Changing a sentence of every report is
an edit here, nothing else.
"""

from __future__ import annotations

from string import Template


class Caption(Template):
    """A caption with ``$field`` placeholders."""

    def fill(self, **fields: str | int) -> str:
        """The caption with every field filled; KeyError naming the fields when they are not exactly the
        template's."""
        expected = set(self.get_identifiers())
        if set(fields) != expected:
            raise KeyError(f"caption fields {sorted(fields)} do not match the template's {sorted(expected)}")
        return self.substitute({k: str(v) for k, v in fields.items()})


def setting(value: float) -> str:
    """A spec setting as the spec writes it (α = 0.05, a margin of 0.5): its shortest form, not a measured number
    (measured numbers have their decimals from ``fmt.decimals`` and go through ``fmt.num``)."""
    return f"{value:g}"


def plural(count: int, suffix: str = "s") -> str:
    """The plural ending for ``count`` things: "" for one, else ``suffix``."""
    return "" if count == 1 else suffix


# -- the comparison tables ---------------------------------------------------------------------------------------

COMPARISON_TITLE = Caption("$metric ($direction is better)")

COMPARISON_EXPLANATION = Caption(
    "Each variant vs the baseline $baseline on the seeds both finished. n: finished/planned seeds; mean ± sample "
    "std (ddof=1) over the finished seeds; Δ: mean per-seed difference (variant − baseline) with its unadjusted 95% "
    "t-interval; simultaneous: the Bonferroni 95% interval over the metric's family of m comparisons (level 1 − "
    "0.05/m), the interval that goes with the Holm verdicts (one that excludes 0 is Holm-resolved; Holm can resolve "
    "one whose simultaneous interval still touches 0); both intervals clipped to what the metric allows (the "
    "variant's mean within the metric's range); p: two-sided paired t-test; sign-flip p: the exact paired sign-flip "
    "(permutation) test over the 2^n sign patterns, with the smallest p it can reach at this n (2/2^n: 0.25 at n = "
    "3, 0.0625 at n = 5). $design Family: per metric, the comparisons against the baseline, Holm-adjusted p, α = "
    "$alpha; verdict better / worse where the adjusted p ≤ α; equivalent where two one-sided tests put the "
    "difference within the spec's smallest effect of interest (margin; without one in the spec, no equivalence "
    "verdict); else not resolved, with the |Δ| this design had 80% power for (exact noncentral t at the observed "
    "paired spread and n, level α/m: a property of the design computed from an estimated SD, not a bound on the "
    "effect; uninformative where it exceeds the metric's range). Bold: the best mean, only when it is resolved "
    "better than every other row (paired tests of the best row against each other row, Holm over those); ≈: tied "
    "with the best in the sense of that test.")

PAPER_DELTA = Caption(" paper Δ: the paper's number minus its baseline row's ($source), never its absolute number.")

PAPER_MECHANISM = Caption(
    " vs the paper: this study runs on an embedded task built to need the switches, so each row is a mechanism "
    "check, not a reproduction: behaves as designed where the Holm verdict has the paper's direction (stated in the "
    "spec before the run), does not where it is resolved the other way; untestable at a ceiling or floor of both "
    "means, or where the paired Δ had not converged; no expectation where the paper's Δ is within its own test-set "
    "noise.")

PAPER_REPRODUCTION = Caption(
    " vs the paper: agrees / contradicts where our comparison is resolved (Holm) with / against the paper's sign; "
    "smaller than the paper's where the simultaneous interval holds 0 but excludes the paper's Δ; consistent with "
    "both where it holds both; untestable at a ceiling or floor of both means or where the paired Δ had not "
    "converged; paper's Δ within its own noise where it is at most the binomial 95% half-width of the paper's number "
    "on its test set.")

NO_SOURCE = Caption("source not stated in this study's stored spec")

COMPARISON_BRIEF = Caption(
    "$metric, $direction is better. Family: the $m comparison$s against the baseline on $metric (Holm, α = $alpha); "
    "$welch.")

WELCH_FOR = Caption("Welch's unpaired test (fewer than 2 seeds shared with the baseline) for $variants")

ALL_PAIRED = Caption("every comparison paired")

COMPARISON_CAPTION = Caption("Study $study, $brief $explanation")

LATEX_LEFT_OUT = Caption(" Not shown here (see report.md and cells.csv): $columns.")

# -- the verdict line of a metric ---------------------------------------------------------------------------------

VERDICT_LINE = Caption("**$metric** ($family): $verdicts.$best$margin")

VERDICT_FAMILY = Caption("$m comparisons vs $baseline, Holm, α = $alpha")

NO_COMPARISON = Caption("no comparison")

RESOLVED = Caption("$verdict than the baseline: $variants")

RESOLVED_VARIANT = Caption("$variant ($estimate, simultaneous $interval, Holm p $p)")

EQUIVALENT_VARIANTS = Caption("equivalent within ±$margin (TOST, α = $alpha): $variants")

UNRESOLVED_VARIANT = Caption("$variant: $verdict")

BEST_RESOLVED = Caption(" Resolved best: $variant.")

BEST_TIED = Caption(" No resolved best ($ties rows tied with the best mean).")

NO_MARGIN = Caption(" No equivalence verdict: the spec gives no smallest effect of interest (margin).")

WARNING = Caption(" Warning: $warning.")

BIMODAL = Caption(
    "$variant: the per-seed differences are bimodal ($low seed$s at Δ ≈ $low_delta, $high at Δ ≈ $high_delta: some "
    "seeds learned and some did not), so the t-test's normal model does not hold; the exact sign-flip p is $p")

SIGN_FLIP_FLOOR = Caption(
    "$variants: resolved by the t-test, but at n = $n the exact sign-flip test cannot go below $min_p (> α): the "
    "verdict rests on the normal model")

# -- the cost table -----------------------------------------------------------------------------------------------

COST_TITLE = Caption("Cost")

COST_CAPTION = Caption(
    "Cost, study $study: parameters (millions), FLOPs ($unit: multiply-adds per image, the papers' convention), "
    "training and evaluation throughput (images/s, mean over the finished seeds; throughput depends on the machine's "
    "load).")

# -- table.tex ------------------------------------------------------------------------------------------------------

LATEX_PREAMBLE = Caption(
    "% Tables of a swin-lit report. Needs \\usepackage{booktabs} and \\usepackage{graphicx};\n"
    "% every table is scaled to the line width only when it is wider. The text is plain ASCII.\n\n")

# -- a verdict in words (``fmt.verdict_text``) and the design's assumption -------------------------------------------

EQUIVALENT_WITHIN = Caption("equivalent (within ±$margin)")

NOT_RESOLVED_POWER = Caption("not resolved; $power")

NO_TEST_FEW_SEEDS = Caption("not resolved (too few seeds for a test)")

NO_TEST_NO_SPREAD = Caption("not resolved (no spread across seeds: no t-test)")

DESIGN = Caption(
    "Assumption: seeds are blocks (one seed fixes the data order, augmentation draws and initialisation for every "
    "variant), so each variant is compared with the baseline by its per-seed differences, taken as independent and "
    "roughly normal (t-based interval and test).")

SIGN_FLIP_MIN = Caption("$p (min $min_p")

SIGN_FLIP_CANNOT = Caption(": cannot reach α = $alpha at this n)")

SIGN_FLIP_BIMODAL = Caption("; bimodal: $low / $high seeds")

# -- report.md's header lines (``build``) ---------------------------------------------------------------------------

MIXED_VERSIONS = Caption(
    "**Warning: the result records mix versions** ($groups): their split losses ($metrics) are not comparable "
    "(version 2: a mean per image over the split; version 1: the mean of the batch means).")

VERSION_CELLS = Caption("version $version: $cells")

CELL = Caption("$variant seed $seed")

REPORT_TITLE = Caption("# Ablation report: $study")

STORAGE = Caption(
    "Storage: `$storage` (study `$study`). Train cells: $finished finished of $planned planned$others. Baseline: "
    "`$baseline`. $seeds")

STATUS_COUNT = Caption(", $count $status")

SEEDS_EVERY = Caption("every variant finished $n")

SEEDS_FINISHED = Caption("$n finished: $variants")

SEEDS_LISTED = Caption("Seeds: $seeds (listed in the spec); $got.")

SEEDS_TWO_STAGE = Caption(
    "Seeds: two-stage (Stein 1945): $start first, then N from each comparison's first-stage SD (max $max, precision "
    "$precision on $objective); now $seeds; $got.")

SEEDS_DECISION = Caption(" The study $status: $reason.")

SEEDS_STOPPED = Caption("stopped")

SEEDS_GO_ON = Caption("goes on")

SEEDS_LEVEL = Caption(" Tests and intervals use the first-stage SD with $df df, which keeps their level.")

HISTORY = Caption(
    "**History: the spec was changed after results were seen** ($changes). The tests below do not correct for a "
    "look at the results before the change: read them as exploratory.")

HISTORY_CHANGE = Caption("$when, after $cells finished cells: $changes")

HISTORY_NO_TIME = Caption("time not recorded")

HISTORY_NO_CHANGES = Caption("changes not recorded")

CHANGED = Caption("$key $old → $new")

NOT_SHOWN = Caption("Not shown: $metric, $why; its numbers are in `cells.csv`.")

PAPER_NOT_COMPARED = Caption(" The paper's $keys numbers are not compared ($metrics not shown).")

TRANSFER_ROWS = Caption("transfer rows")

MECHANISM_LINE = Caption(
    "- **Mechanism checks, not a reproduction** ($source): this study runs on an embedded task built so that the "
    "switches are needed ($data); the paper's ordering is the expected outcome, not a number to reproduce: "
    "$summary.$tail")

REPRODUCTION_LINE = Caption(
    "- **Reproduction of the paper** ($source; family: the study's Holm families): $summary.$tail")

CELLS_FOOTER = Caption(
    "The numeric table (per metric: mean, std, n, the test used, Δ, unadjusted and simultaneous 95% CI, p, Holm p, "
    "sign-flip p and its minimum, bimodality, TOST p, verdict, detectable effect, paper Δ, vs the paper) is in "
    "`cells.csv`; one row per finished cell in `runs.csv`.")

CELLS_NOT_FINISHED = Caption("### Cells not finished")

EFFECTS_FOOTER = Caption("All effects with their p-values are in `effects.csv`.")

TRANSFER_SECTION = Caption("## Transfer to larger windows")

TRANSFER_FOOTER = Caption("Numbers: `transfer.csv` (per row and target), `transfer_tests.csv` (the tests).")

ENV_COUNT = Caption("`$value` ($n runs)")

ENV_LINE = Caption("- $label: $text")

NOT_RECORDED = Caption("not recorded")

PACKAGES_HEADER = Caption("| package | version |")

PACKAGES_NOT_RECORDED = Caption("- package versions: not recorded")

# -- factorial effects (``factorial``) ------------------------------------------------------------------------------

EFFECTS_CONVENTION = Caption(
    "Scale: full differences, not the 2^k effect coding. Main effect of A (level a vs the reference a0, the "
    "baseline's level) = the mean over the other factors' cells of y(a, ·) − y(a0, ·); for a 2×2, "
    "((m21 − m11) + (m22 − m12)) / 2. Interaction of A and B = the difference of differences "
    "(y(a, b) − y(a0, b)) − (y(a, b0) − y(a0, b0)); for a 2×2, (m22 − m12) − (m21 − m11) (the 2^k coding "
    "reports half of it). Simple effect of A at B = b: y(a, b) − y(a0, b). Higher-order interactions are not "
    "formed.")

EFFECTS_METHOD = Caption(
    "Each effect is computed per seed (seeds as blocks; only seeds finished in every cell involved) and shown as its "
    "mean with the unadjusted 95% t-interval over seeds (df = n − 1), the simultaneous (Bonferroni) interval over its "
    "Holm family (the one that goes with the verdicts; both clipped to the largest difference the metric allows, "
    "twice that for an interaction) and the two-sided t-test of 0. Per metric, the main "
    "effects and interactions form one Holm family, the simple effects shown (only for a resolved interaction) "
    "another. Verdicts: main and simple effects better / worse (the level vs the reference), interactions "
    "resolved / not resolved, from the Holm-adjusted p; not resolved with the smallest |effect| detectable with "
    "80% power (exact noncentral t, level α/m).")

EFFECTS_CAPTION = Caption(
    "Factorial effects on $metric ($direction is better), study $study. $convention $method Family here: the $m "
    "main effects and interactions of this metric, α = $alpha.")

EFFECTS_TITLE = Caption("Effects on $metric")

EFFECTS_BRIEF = Caption("Main effects and interactions on $metric. Family: these $m effects (Holm, α = $alpha).")

EFFECT_ESTIMATE = Caption("estimate [95% CI] unadjusted")

SIMPLE_TITLE = Caption("Simple effects on $metric")

SIMPLE_CAPTION = Caption(
    "Simple effects on $metric of the factors of each resolved interaction, study $study: the effect of one factor "
    "at each level of the other (other factors averaged), per seed, mean with the 95% t-interval. Family: these $m "
    "simple effects, Holm-adjusted, α = $alpha.")

SIMPLE_BRIEF = Caption(
    "Simple effects on $metric (the interaction is resolved). Family: these $m simple effects (Holm, α = $alpha).")

SIMPLE_AT = Caption("$estimate $interval at $factor=$level ($verdict)")

MAIN_EFFECT = Caption(" (main effect $estimate)")

EFFECT_OF = Caption("the effect of $factor ($contrast) is $at$main")

CROSSING = Caption(", a crossing interaction (its sign changes with $factor)")

INTERACTION = Caption(
    "The $a × $b interaction on $metric is resolved ($estimate $interval, Holm p $p): $parts. The main effects of $a "
    "and $b alone do not describe the data.")

CELL_MEANS_TITLE = Caption("Cell means of $metric")

CELL_MEANS_CAPTION = Caption("Cell means of $metric, study $study: mean ± sample std over the finished seeds (n)")

CELL_MEANS_MARGINS = Caption(
    "; margins: unweighted means of the cell means (with 2 levels, a main effect on the full-difference scale is the "
    "difference of its margins, up to seeds that did not finish).")

MEAN_OVER = Caption("mean over $factor")

# -- convergence of the comparisons (``convergence``) ---------------------------------------------------------------

CONVERGENCE_TOO_SHORT = Caption("too short to judge")

CONVERGENCE_NO_VERDICT = Caption("no verdict (no margin for this metric)")

ANNEAL_NOTE = Caption(
    "The $schedule schedule anneals the learning rate from $lr to $floor by the last epoch, so a flat end can be the "
    "schedule stopping the model rather than the comparison having converged.")

CONVERGENCE_TITLE = Caption("Convergence of the comparisons")

CONVERGENCE_NO_MARGIN = Caption("none (no verdict)")

CONVERGENCE_CAPTION = Caption(
    "Convergence of the comparisons, study $study: per seed, the paired Δ of $key (variant − baseline, the "
    "objective's validation value) over the last max($window, E/5) epochs (epochs counted from 0). start / end: the "
    "mean paired Δ at the window's first and last epoch; movement: each seed's least-squares trend of its Δ times "
    "the window's span in epochs, mean over seeds [95% t-interval]; p: its t-test against 0; TOST p: two one-sided "
    "tests against the margin $margin. Settled: TOST p ≤ $alpha (the movement is within the margin); still moving: "
    "not settled and p ≤ $alpha; not judged: neither; fewer than $window epochs: too short to judge.")

CONVERGENCE_SHORT_LINE = Caption(
    "**Convergence of the comparisons**: too short to judge ($epochs epochs; the rule needs a window of at least "
    "$window).")

CONVERGENCE_LINE = Caption(
    "**Convergence of the comparisons**: $settled of $judged paired Δ curves settled (their trend over the last "
    "$window epochs is within ±$margin, TOST)")

CONVERGENCE_GROUP = Caption("; $label: $variants")

CONVERGENCE_LONGER = Caption("; a longer run could change those comparisons")

# -- transfer to larger windows (``transfer``) ----------------------------------------------------------------------

TRAINED_CELL_FAILED = Caption("its trained cell failed")

NOT_IN_STUDY = Caption("not in this study")

NOT_IN_PAPER = Caption("not in its table")

SCALED_DENSE = Caption("I: the fine-tuning crop; the test images are segmented at their own size")

SCALED_IMAGE = Caption("the image size scaled with it")

TRANSFER_CHANCE = Caption(" Chance: 1/number of classes ($source).")

TRANSFER_PAPER_ROWS = Caption(
    " Paper rows: $source, at its own training size and windows, aligned with ours by the ratio; its numbers are on "
    "its own data, not comparable with ours in absolute terms.")

NO_STORED_SOURCE = Caption("source not stated in the stored spec")

TRANSFER_TITLE = Caption("Transfer (Swin V2 Table 1 layout)")

TRANSFER_CAPTION = Caption(
    "Transfer to larger windows, study $study (Swin V2 Table 1 layout): one column per transfer ratio (target "
    "window / training window, $scaled), headed by our target and the paper's target of the same ratio; 1× is the "
    "model as trained (test $label of the trained cells). Our rows: a trained variant and its position-bias "
    "transfer method; cells: test $label without fine-tuning / with fine-tuning, mean ± sample std over seeds (n); "
    "failed or missing cells say so, with the reason.$chance$source")

TRANSFER_DELTA = Caption("Δ $label [95% CI] unadjusted")

TRANSFER_CONTRASTS = Caption(" unless it names its reference (the spec's transfer.contrasts)")

TRANSFER_TESTS_TITLE = Caption("Between methods at each target")

TRANSFER_TESTS_CAPTION = Caption(
    "Between methods at each target, study $study: each row vs $base$contrasts, test $label, paired by the trained "
    "seed (Δ: mean per-seed difference with its unadjusted 95% t-interval; simultaneous: the Bonferroni 95% interval "
    "over the target's family, the one that matches the Holm verdicts; both clipped to what $label allows; p: "
    "two-sided paired t-test; sign-flip p: the exact paired sign-flip test with its smallest attainable p). $design "
    "Family: every comparison at one target (without and with fine-tuning), Holm-adjusted, α = $alpha; not resolved "
    "with the |Δ| this design had 80% power for.$paper")

TRANSFER_TESTS_PAPER = Caption(
    " paper Δ: the paper's difference between the same rows at its target of the same ratio; vs the paper: as in "
    "the comparison tables.")

# -- the paper checks' verdicts and their count (``reproduction``), a hidden metric (``compare``) -------------------

SMALLER_THAN_PAPER = Caption("smaller than the paper's")

PAPER_WITHIN_NOISE = Caption("paper's Δ within its own noise")

NOT_AS_DESIGNED = Caption("does not behave as designed")

NO_EXPECTATION = Caption("no expectation (paper's Δ within its own noise)")

CLAIMS = Caption("$counts (of $n claim$s)")

NOT_COUNTED = Caption(
    "; $n row$s where the paper's Δ is within its own test-set noise (no ordering to check) not counted")

TOP5_HIDDEN = Caption(
    "$classes classes (fewer than $least): top-5 of $classes classes is near its ceiling (chance $chance%)")

# -- the Setting section (``setting``) ------------------------------------------------------------------------------

IMAGENET_SCHEDULE = Caption("300 epochs x 1.28 M training images")

ADE20K_MODEL = Caption("Swin-T backbone + UperNet")

ADE20K_SCHEDULE = Caption("160k iterations x batch 16 at 512 x 512 px (2.56 M crops)")

ADE20K_ASSUMPTION = Caption(
    "mIoU read as a proportion over the 2,000 val images (an assumption: mIoU is averaged over classes and pixels, "
    "its real standard error differs)")

LR_SCHEDULE = Caption("$schedule LR schedule$floor")

LR_FLOOR = Caption(" to a floor of $floor")

IMAGES_PER_EPOCH = Caption("$count training images per epoch$measured")

IMAGES_MEASURED = Caption(" (measured: throughput x training time / epochs)")

IMAGES_NOT_RECORDED = Caption("training images per epoch not recorded")

EPOCHS = Caption("$epochs epochs")

IMAGES_SEEN = Caption(" = $count images seen per run")

FLOPS_PER_IMAGE = Caption("$flops M multiply-adds per image")

PARAMETERS = Caption("$params M parameters")

DEVICE_RUNS = Caption("$device ($n runs)")

TRAIN_HOURS = Caption("$hours h of training loops over $runs finished runs")

MODEL_OURS = Caption("- **Model (ours)**: $params, $flops.")

TRAINING_OURS = Caption("- **Training (ours)**: $epochs x $images$seen$schedule.")

COMPUTE_OURS = Caption("- **Compute (ours)**: $hours, on $devices.")

TEST_SET_OURS = Caption("- **Test set (ours)**: $images images$noise.")

TEST_SET_NOISE = Caption("; at the baseline's $base% top-1 its binomial 95% half-width is $noise points")

TEST_SET_UNKNOWN = Caption("- **Test set (ours)**: size not recorded (read from files), so no binomial half-width.")

PAPER_PARAMETERS = Caption("$params M parameters")

PAPER_NO_PARAMETERS = Caption("parameters not stated")

PAPER_GFLOPS = Caption(", $gflops GFLOPs")

PAPER_SETTING = Caption(
    "- **The paper's setting** ($source): $model, $size; $schedule; test set $dataset $split, $images images"
    "$assumption.")

SCALE_GAP_PARAMS = Caption("about 1/$ratio of the paper's parameters")

SCALE_GAP_IMAGES = Caption(", 1/$ratio of its training images seen")

SCALE_GAP = Caption("- **Scale gap**: $gap.")

PAPER_UNKNOWN = Caption("- **The paper's setting**: the spec names no paper data set this report knows.")

# -- the scorecard (``scorecard``) ----------------------------------------------------------------------------------

MODEL_SIZE = Caption("$params M params")

NO_STORED_PAPER_SOURCE = Caption("source not in the stored spec")

TRANSFER_CLAIM = Caption("$variant ($method) vs $versus at W$window/I$img (${ratio}x, $ft); paper $target")

NOT_A_FOLDER = Caption("$root: not a folder of studies (e.g. results/)")

NO_PAPER_NUMBERS = Caption("its spec names no paper numbers")

COUNTERPART_NOT_SCORED = Caption(
    "its counterpart: rows (a cross-study difference of effects in different units on different data) are not scored")

MECHANISM_HEADLINE = Caption(
    "Mechanism checks (embedded tasks built to need the switches; not reproductions): $summary ($n check$s from "
    "$studies stud$ies; verdicts from each study's Holm family).")

REPRODUCTION_HEADLINE = Caption(
    "Reproductions on natural data: $summary from $studies stud$ies; agrees / contradicts at Benjamini-Hochberg "
    "q ≤ $alpha, family: the $tested testable reproduction$s of this section (untestable ones are not tests).")

EXPLORATORY_HEADLINE = Caption(
    "Exploratory ($n row$s, no verdicts counted): the paper's Δ is within its own test-set noise (the binomial 95% "
    "half-width of its number on its test set), so there is no ordering to check.")

SCORECARD_INTRO = Caption(
    "$n distinct measurement$s with the paper's Δ beside them, from $studies studies; studies that ran the same "
    "cells (same config hash and seed) share a row. Generated by `swin-lit scorecard`. The sections are never "
    "pooled.")

REPRODUCTIONS_SECTION = Caption("## Reproductions on natural data")

OURS_DELTA = Caption("ours Δ [95% CI]")

OURS_DELTA_UNADJUSTED = Caption("ours Δ [95% CI, unadjusted]")

PAPER_DELTA_RELATIVE = Caption("paper Δ (relative) [source]")

PAPER_DELTA_NOISE = Caption("paper Δ (its noise) [source]")

SCORECARD_NOTES = Caption(
    "Intervals are clipped to what the metric allows. The paper's noise: 1.96 √(p(1 − p)/N) of its reference number "
    "on its test set (ImageNet-1K val, N = 50,000; ADE20K val, N = 2,000 images, reading mIoU as a proportion over "
    "images: an assumption). Untestable: both means within 0.5 points of the metric's top (ceiling) or of chance "
    "(floor), or the paired Δ still moving at the end of training.")

SCORECARD_CHANGED = Caption(
    "† the study's spec was changed after results were seen (recorded in its storage; see its report): its rows are "
    "a sequential design the tests do not correct for.")

SCORECARD_SKIPPED = Caption("Studies without a row or with rows not scored: $studies.")

# -- figures (``figures``, ``predictions``) and where the class count came from (``data``) -------------------------

FIGURE_SEEDS = Caption("ours: seeds (dots), mean with 95% CI")

FIGURE_DELTA_AXIS = Caption("Δ $metric vs baseline (paired by seed)")

FIGURE_DELTA_TITLE = Caption("Δ with 95% CI; colour: verdict (Holm, α = $alpha)")

FIGURE_PAPER_DELTA = Caption("paper Δ vs its baseline")

FIGURE_CURVES = Caption("$study: $key per epoch (line: mean, band: min–max over seeds)")

FIGURE_RATIO_AXIS = Caption("transfer ratio (target window / training window); 1× = as trained")

FIGURE_TRANSFER_OURS = Caption("ours ($study): mean with 95% CI over seeds")

FIGURE_PAPER_RATIO_AXIS = Caption("transfer ratio (the paper's windows); 1× = as trained")

FIGURE_PAPER_AXIS = Caption("$label (%) on the paper's data")

FIGURE_PAPER_TITLE = Caption("paper: $source")

FIGURE_INTERACTION = Caption("$study: $a × $b on $metric (mean, 95% CI over seeds)")

FIGURE_KEPT = Caption("report: kept the earlier prediction figure, it cannot be redrawn here: $why")

FIGURE_NONE = Caption("report: no prediction figure: $why")

PREDICTIONS_NOT_DENSE = Caption("not a study of per-pixel labels (task $task)")

PREDICTIONS_NO_RUN = Caption("no run folder with a trained model next to the study")

PREDICTIONS_TITLE = Caption("$study: test predictions (each variant's lowest finished seed)")

CLASSES_FROM_CONFIGS = Caption("the trained cells' configs (model.num_classes)")

CLASSES_FROM_BUDGET = Caption("the spec's budget (model.num_classes)")
