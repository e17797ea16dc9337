"""PNG plots of a fine-tuning run: loss and validation-score curves, confusion matrices (matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], best_epoch: int, path: Path) -> Path:
    """Train/validation loss and the validation score per epoch; the kept epoch is marked."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    loss_ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    for task in ("category", "sentiment"):
        if any(task in h for h in history):
            score_ax.plot(
                epochs, [h.get(task, {}).get("macro_f1") for h in history], label=f"{task} macro-F1"
            )
    score_ax.plot(epochs, [h["val_score"] for h in history], "k--", label="score (mean)")
    score_ax.set(xlabel="epoch", ylabel="macro-F1", title="Validation", ylim=(0, 1.05))
    for ax in (loss_ax, score_ax):
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusions(panels: list[tuple[str, dict[str, Any]]], path: Path) -> Path:
    """Confusion matrices side by side (e.g. zero-shot vs fine-tuned): rows truth, columns predicted."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    for ax, (title, metrics) in zip(axes[0], panels, strict=True):
        matrix, names = metrics["confusion"], metrics["labels"]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(f"{title}\naccuracy {metrics['accuracy']:.2f}, macro-F1 {metrics['macro_f1']:.2f}")
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(
                    j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black"
                )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_cv(cv: dict[str, Any], path: Path) -> Path:
    """Cross-validated accuracy (mean, spread over folds) of zero-shot and the fitted head, per task."""
    plt = _pyplot()
    tasks = list(cv)
    fig, ax = plt.subplots(figsize=(2.5 + 2.5 * len(tasks), 4))
    width = 0.38
    for k, (head, colour) in enumerate((("zero_shot", "#999999"), ("fine_tuned", "#1f77b4"))):
        means = [cv[t][head]["accuracy_mean"] for t in tasks]
        stds = [cv[t][head]["accuracy_std"] for t in tasks]
        xs = [i + (k - 0.5) * width for i in range(len(tasks))]
        ax.bar(xs, means, width, yerr=stds, capsize=4, color=colour, label=head.replace("_", "-"))
        for x, m in zip(xs, means, strict=True):
            ax.text(x, m + 0.02, f"{m:.2f}", ha="center")
    ticks = [
        f"{t}\n{cv[t]['folds']}-fold x {cv[t]['repeats']}\nchose {cv[t]['chosen']['method']}" for t in tasks
    ]
    ax.set_xticks(range(len(tasks)), ticks)
    ax.set(ylabel="accuracy (held-out folds)", ylim=(0, 1.1), title="Cross-validated accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
