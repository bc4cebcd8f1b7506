"""The `toymodels` command: a thin shell, each subcommand one call of the public API."""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

from toymodels.errors import Interrupted, UserError, unknown
from toymodels.kinds import LLC_LOSSES
from toymodels.llc_config import LLC_SCHEMA


QUOTED = r"'([^']*)'"  # a choice in argparse's "invalid choice" message


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block, a "did you mean" for a wrong
    choice) and exit 2."""

    def error(self, message: str):
        wrong = re.match(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if wrong:
            name, given, choices = wrong.groups()
            what = {"command": "command", "zoo_command": "command", "KIND": "plot kind"}.get(name, name)
            message = f"{given}: {unknown(given, re.findall(QUOTED, choices), what)}"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _PlotParser(_Parser):
    """`toymodels plot`'s parser: its help lists every kind in one line each, read from
    the registry only when the help is shown (the plotting modules take seconds to import)."""

    kind: str | None = None  # the KIND given before --help (`_Kind`), if any

    def format_help(self) -> str:
        from toymodels.plotting import PLOTS, plot_help, plot_summary  # only for this help
        # (start-up time)
        if self.kind is not None:
            return self._kind_help(self.kind, PLOTS, plot_help)
        kinds = "\n".join(f"  {kind:28} {plot_summary(kind)}" for kind in PLOTS)
        self.epilog = ("kinds (each kind's options and what it needs: toymodels plot KIND --help, "
                       f"docs/plots.md):\n{kinds}")
        return super().format_help()

    def _kind_help(self, kind: str, plots, plot_help) -> str:
        """`plot KIND --help`: the usage, then the kind's description, needs and options;
        an unknown KIND is the one-line did-you-mean error of `plot KIND DIR` (exit 2)."""
        if kind not in plots:
            self.exit(2, f"toymodels: error: plot {kind}: {unknown(kind, plots, 'plot kind')}\n")
        usage = self.format_usage().replace(" KIND ", f" {kind} ", 1)
        return f"{usage}\n{plot_help(kind)}\n"


class _Kind(argparse.Action):
    """Stores `plot`'s KIND and tells the parser, so that a --help after it describes
    that kind (argparse takes KIND before it acts on --help)."""

    def __call__(self, parser, namespace, value, option_string=None):
        parser.kind = value
        setattr(namespace, self.dest, value)


def read_sweep(args):
    """`toymodels sweep`'s config, read before JAX is imported (`_command`): a config
    error is one line at once."""
    from toymodels.parsers import load_config  # imports no JAX (start-up time)

    return load_config(args.config, tuple(args.set), tuple(args.unset))


def cmd_sweep(args) -> None:
    out = _run_sweep(args.sweep, args, args.out)
    if not args.quiet:
        print(next_commands(out), file=sys.stderr)


def _run_sweep(config, args, out=None):
    """Runs a parsed sweep (several processes with --distributed or --coordinator);
    returns its results directory."""
    from toymodels.sweep import run_sweep  # imports JAX (start-up time)

    if args.distributed or args.coordinator:
        _start_distributed(args)
    with _sigterm_interrupts():
        return run_sweep(config, out, chunk_size=args.chunk_size, quiet=args.quiet)


def next_commands(out) -> str:
    """The sweep's last line: the commands that fit what it made (the plot kinds that
    apply to it, `plotting.needs.kinds_for`)."""
    from toymodels import store  # with the sweep's own imports (start-up time)
    from toymodels.plotting.needs import kinds_for  # idem

    kinds = store.peek(out, kinds_for) or []
    plot = f"toymodels plot {kinds[0]} {out} --out {kinds[0]}.png" if kinds else None
    more = f" (kinds here: {', '.join(kinds)})" if len(kinds) > 1 else ""
    steps = [f"toymodels info {out}", f"toymodels analyze {out}", *([plot + more] if plot else []),
             f"toymodels explore {out} --out {Path(out).name}.html"]
    return "next: " + "; ".join(steps)


@contextlib.contextmanager
def _sigterm_interrupts():
    """Inside, SIGTERM raises `Interrupted` like Ctrl-C (exit 143 instead of 130), so that a
    sweep stops cleanly: no partial file, its lock released, one line on what is saved."""
    def interrupt(signum, frame):
        raise Interrupted("interrupted by SIGTERM", signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_distributed(args) -> None:
    """Joins a multi-process run: explicit flags, or the cluster's environment (SLURM...)."""
    import jax

    explicit = (args.coordinator, args.num_processes, args.process_id)
    if args.coordinator and None in explicit:
        raise UserError("--coordinator needs --num-processes and --process-id too")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes, process_id=args.process_id)


def use_cpu_devices(n: int | None) -> None:
    """Splits the CPU into `n` JAX devices (default: one per core) so that sweeps use every
    core; must run before JAX starts its backends. No effect on GPU devices."""
    import os

    import jax

    try:
        jax.config.update("jax_num_cpu_devices", n or len(os.sched_getaffinity(0)))
    except RuntimeError:  # JAX already running (main() called from Python): keep its devices
        if n is not None:
            raise UserError("--cpu-devices must be set before JAX starts; run it as a command") from None


def cmd_info(args) -> None:
    from toymodels.info import describe

    print(describe(args.dir))


def cmd_analyze(args) -> None:
    from toymodels.analysis.write import analyze_store

    ds = analyze_store(args.dir, adversarial=args.adversarial, extras=args.extra)
    added = [v for v in ds.data_vars if "description" in ds[v].attrs]
    print(f"{args.dir}: added {', '.join(added)}")


def read_llc(args):
    """`toymodels llc`'s pass, its `[llc]` table from the flags, parsed before JAX is
    imported (`_command`): a bad flag value is one line at once."""
    from toymodels.parsers import parse_config  # imports no JAX (start-up time)

    flags = {"loss": args.loss, "epsilon": args.epsilon, "gamma": args.gamma, "nbeta": args.nbeta,
             "n": args.n, "chains": args.chains, "draws": args.draws, "burn_in": args.burn_in,
             "batch_size": args.batch_size, "snapshots": args.snapshots or None,
             "epsilon_scale": args.epsilon_scale, "calibrate": args.calibrate or None,
             "calibrate_runs": args.calibrate_runs}
    table = {"source": args.dir, **{k: v for k, v in flags.items() if v is not None}}
    return parse_config({"llc": table}, "toymodels llc")


def cmd_llc(args) -> None:
    import numpy as np

    from toymodels.llc_calibration import recommendation_text  # imports JAX (start-up time)

    from toymodels.store import load

    out = _run_sweep(args.sweep, args)
    if args.calibrate:
        print(f"{out}: {recommendation_text(load(out))}; "
              f"figure: toymodels plot llc_calibration {out} --out llc_calibration.png")
        return
    ds = load(args.dir)
    trusted, llc = ds.llc_trusted.values, ds.llc.values
    median = float(np.median(llc[np.isfinite(llc)])) if np.isfinite(llc).any() else np.nan
    added = [v for v in ds.data_vars if v.startswith("llc")]
    failed = collections.Counter(reason for text in ds.llc_untrusted.values.ravel()
                                 for reason in str(text).split(", ") if reason)
    why = "; not trusted: " + ", ".join(f"{name} {n}" for name, n in failed.most_common()) if failed else ""
    print(f"{args.dir}: added {', '.join(added)}; median llc {median:.3g}, "
          f"trusted {int(trusted.sum())} of {trusted.size}{why}")


def cmd_plot(args) -> None:
    from toymodels.plotting import save_plot

    options = dict(_option(o) for o in args.option)
    save_plot(args.kind, args.dir, args.out, **options)
    print(f"wrote {args.out}")


def cmd_explore(args) -> None:
    from toymodels.explore import write_page

    out = write_page(args.dir, args.out, var=args.var, x=args.x, y=args.y,
                     max_curve=args.max_curve)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB; open it in a browser, offline)")


def cmd_reproduce(args) -> None:
    from toymodels.reproduce import reproduce

    written = reproduce(args.only, quick=args.quick, runs_dir=args.runs,
                        plots_dir=args.plots, quiet=args.quiet)
    print(f"wrote {len(written)} figures: {', '.join(str(p) for p in written)}")


def cmd_zoo_list(args) -> None:
    from toymodels import zoo

    width = max(map(len, zoo.names()))
    for name in zoo.names():
        print(f"{name:<{width}}  {zoo.describe(name)}")


def cmd_zoo_build(args) -> None:
    from toymodels import zoo_build

    written = zoo_build.build(args.names or None, out_dir=args.out, quiet=args.quiet)
    print(f"wrote {len(written)} models: {', '.join(str(p) for p in written)}")


def _option(item: str) -> tuple[str, object]:
    import tomllib

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"--option {item!r}: expected name=value, e.g. axis=sparsity")
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="toymodels", description="Train and analyse toy models of superposition.")
    parser.add_argument("--cpu-devices", type=_positive, default=None, metavar="N",
                        help="JAX CPU devices (default: one per core; runs are split over them)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("sweep", help="train every run of a sweep file (resumes if interrupted)")
    p.add_argument("config", help="a sweep file, e.g. sweeps/intro.toml")
    p.add_argument("--out", default=None, help="results directory, e.g. runs/intro (an [llc] "
                   "pass writes into its source and takes none)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, TOML value syntax: --set train.steps=500 --set 'sweep.seed=[0,1]'")
    p.add_argument("--unset", action="append", default=[], metavar="KEY",
                   help="remove a key of the file (before --set), e.g. --unset sae.runs")
    p.add_argument("--chunk-size", type=_positive, default=None, help="runs per compiled call")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _distributed_flags(p)
    p.set_defaults(func=cmd_sweep, read=read_sweep)

    p = sub.add_parser("info", help="axes, sizes, runs done, config and versions of a results directory")
    p.add_argument("dir")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("analyze", help="add norms, interference, dimensionality, polytopes, phase to DIR")
    p.add_argument("dir")
    p.add_argument("--adversarial", action="store_true",
                   help="also the vulnerability to the optimal L2 attack (slower for large models)")
    p.add_argument("--extra", action="append", default=[], metavar="NAME",
                   help="also this costly variable (repeatable): basis_kurtosis_p, "
                        "rescaled_loss or vulnerability (toymodels.analysis.EXTRAS)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("llc", help="add the local learning coefficient of every run to DIR "
                       "(localised SGLD; resumes if interrupted)")
    p.add_argument("dir")
    p.add_argument("--loss", default=None, choices=LLC_LOSSES,
                   help="the run's finite training set (default where it has one), fresh "
                        "samples, or the exact population loss (default otherwise, where it exists)")
    p.add_argument("--epsilon", type=_step, default=None,
                   help='SGLD step size, or "auto" (default): SCALE / (nbeta h_max + gamma), '
                        'h_max the largest Hessian eigenvalue at w*')
    p.add_argument("--epsilon-scale", type=float, default=None, metavar="SCALE",
                   help=f"the scale of --epsilon auto (default {LLC_SCHEMA['epsilon_scale'].default:g})")
    p.add_argument("--gamma", type=float, default=None,
                   help=f"localisation strength (default {LLC_SCHEMA['gamma'].default:g})")
    p.add_argument("--nbeta", type=float, default=None,
                   help="n beta (default n / ln n, n the dataset size or --n)")
    p.add_argument("--n", type=int, default=None, help="sample size of the default nbeta "
                   "for --loss online or exact")
    p.add_argument("--chains", type=int, default=None,
                   help=f"chains per run (default {LLC_SCHEMA['chains'].default})")
    p.add_argument("--draws", type=int, default=None,
                   help=f"draws kept per chain (default {LLC_SCHEMA['draws'].default})")
    p.add_argument("--burn-in", type=int, default=None,
                   help=f"steps dropped first (default {LLC_SCHEMA['burn_in'].default})")
    p.add_argument("--batch-size", type=int, default=None,
                   help="minibatch per step (default 0: the full training set; needed for online)")
    p.add_argument("--snapshots", action="store_true",
                   help="also at every snapshot of training (llc_snapshots)")
    p.add_argument("--calibrate", action="store_true",
                   help="instead, estimate a few runs on a grid of epsilon scale x gamma x nbeta "
                        "x chain length into DIR/llc_calibration, with each estimate's bias "
                        "diagnostic, and recommend settings")
    p.add_argument("--calibrate-runs", type=int, default=None, metavar="K",
                   help=f"runs calibrated (default {LLC_SCHEMA['calibrate_runs'].default})")
    p.add_argument("--chunk-size", type=_positive, default=None, help="runs per compiled call")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _distributed_flags(p)
    p.set_defaults(func=cmd_llc, read=read_llc)

    sub._parser_class = _PlotParser  # argparse's add_parser takes no class of its own
    p = sub.add_parser("plot", help="draw a figure from a results directory",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub._parser_class = _Parser
    p.add_argument("kind", metavar="KIND", action=_Kind,
                   help="the figure, one of the kinds below")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="image file, e.g. plots/intro.png")
    p.add_argument("--option", "-o", action="append", default=[], metavar="NAME=VALUE",
                   help="a plot option, e.g. -o axis=sparsity -o var=n_represented")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("explore", help="write one self-contained HTML page to explore DIR in a "
                       "browser: heatmaps over any two axes, click a cell to see its run")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="HTML file, e.g. explore.html")
    p.add_argument("--var", default=None, help="variable shown first (default final_loss, mmcs for SAEs; "
                   "NAME:mean or NAME:I for a per-feature one)")
    p.add_argument("--x", default=None, help="sweep axis shown first along x")
    p.add_argument("--y", default=None, help="sweep axis shown first along y")
    p.add_argument("--max-curve", type=_positive, default=50, metavar="N",
                   help="logged steps kept per loss curve (default 50)")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("reproduce", help="run the paper's sweeps (sweeps/) and draw their figures")
    p.add_argument("--quick", action="store_true",
                   help="reduced sweeps (a few minutes in all), into the quick/ subfolders")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this experiment (repeatable), e.g. --only phase_2_1")
    p.add_argument("--runs", default="runs/reproduce", metavar="DIR",
                   help="results root; each sweep goes to DIR/NAME (default runs/reproduce)")
    p.add_argument("--plots", default="runs/reproduce/plots", metavar="DIR",
                   help="figures folder (default runs/reproduce/plots; --plots plots updates the "
                        "gallery's tracked figures)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("zoo", help="named trained models that illustrate the paper")
    zoo_sub = p.add_subparsers(dest="zoo_command", required=True, parser_class=_Parser)
    q = zoo_sub.add_parser("list", help="each model's name and what it illustrates")
    q.set_defaults(func=cmd_zoo_list)
    q = zoo_sub.add_parser("build", help="retrain zoo models from their configs")
    q.add_argument("names", nargs="*", metavar="NAME", help="which models (default all)")
    q.add_argument("--out", default=None, metavar="DIR",
                   help="where to write NAME.npz (default the package's zoo_data folder)")
    q.add_argument("--quiet", action="store_true", help="no progress messages")
    q.set_defaults(func=cmd_zoo_build)
    return parser


def _distributed_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("several processes or hosts (jax.distributed)")
    group.add_argument("--distributed", action="store_true",
                       help="join a multi-process run described by the environment (e.g. SLURM)")
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    group.add_argument("--num-processes", type=_positive, metavar="N")
    group.add_argument("--process-id", type=int, metavar="I")


def _step(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be a number or "auto", got {text!r}') from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Runs the command `toymodels ARGV...`; returns its exit code (0, 2 for a UserError,
    130 or 143 for SIGINT or SIGTERM, 141 when stdout is closed early, as by
    `toymodels info DIR | head -1`). As the command itself (argv None), the CPU is split
    into one JAX device per core and an interrupted sweep ends the process at once
    (`_exit_now`); called from Python, the process keeps its devices (unless
    `--cpu-devices` is given) and its life."""
    try:
        code = _command(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _stdout_closed() -> int:
    """The reader of stdout has gone (`| head -1`): ends quietly, like `cat`, with the code
    of a process that SIGPIPE ended. What stdout still buffers goes to /dev/null, so that
    Python's own flush at exit raises nothing either."""
    with contextlib.suppress(AttributeError, OSError, ValueError):  # no file descriptor
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def _command(argv: list[str] | None) -> int:
    """`main` but for a closed stdout."""
    parser = build_parser()
    given = sys.argv[1:] if argv is None else argv
    if not given or given == ["zoo"]:  # bare: the help, not an error
        (parser if not given else parser._subparsers._group_actions[0].choices["zoo"]).print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help into a closed pipe: the BrokenPipeError here, not at exit
        raise
    try:
        if "read" in args:  # sweep, llc: the config first, without JAX (its error at once)
            args.sweep = args.read(args)
        if argv is None or args.cpu_devices is not None:  # called from Python (a test, a
            use_cpu_devices(args.cpu_devices)  # notebook): the process keeps its own devices
        args.func(args)
    except UserError as e:
        print(f"toymodels: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"toymodels: {e}", file=sys.stderr)
        if argv is None:
            _exit_now(128 + e.signum)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("toymodels: interrupted; finished chunks are kept, rerun the command to resume",
              file=sys.stderr)
        return 130
    return 0


def _exit_now(code: int) -> None:
    """Ends the process without waiting for the device work in flight, which JAX's
    teardown would wait for (up to a chunk's time, about a minute). Nothing is left to
    clean up: the lock is released and every file is either whole or removed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
