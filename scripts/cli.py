"""The `reelsense` command: a thin layer over the library. Each command turns flags into config, calls the
library once per source, and prints one JSON object per source per line (`--pretty` for people).

A source that fails prints an error line (`status: "error"` with a stable `code`) and the run goes on;
the exit status is 1 when any source failed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import MediaError
from pipeline.config import AnalyzerConfig, FetchConfig, FrameConfig, MediaConfig, TranscribeConfig
from pipeline.prediction import internal_error
from scripts.summary import summarize

if TYPE_CHECKING:
    from models.labels import LabelSet

log = logging.getLogger("reelsense")

SourceHandler = Callable[[str], dict[str, Any]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if hasattr(args, "run"):  # a command that handles its sources itself (batch)
        return int(args.run(args))
    try:
        handler: SourceHandler = args.command(args)
    except MediaError as exc:  # bad flags or models that cannot load: nothing can be analysed
        print(f"reelsense: {exc.message} ({exc.code.value})", file=sys.stderr)
        return 2
    return _run_sources(args.sources, handler, pretty=args.pretty, summary=getattr(args, "summary", False))


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reelsense", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    probe = sub.add_parser("probe", help="print what a media file holds (container, streams, duration)")
    _add_common(probe)
    probe.set_defaults(command=_probe_command)
    inspect = sub.add_parser(
        "inspect", help="decode frames, audio and speech of each source and print a summary"
    )
    _add_common(inspect)
    _add_media_flags(inspect)
    inspect.set_defaults(command=_inspect_command)
    analyze = sub.add_parser(
        "analyze", help="what each video is about (category) and how it feels (sentiment), with evidence"
    )
    _add_common(analyze)
    _add_media_flags(analyze)
    _add_analyzer_flags(analyze)
    analyze.add_argument("--summary", action="store_true", help="a readable summary instead of JSON")
    analyze.set_defaults(command=_analyze_command)
    _add_batch_parser(sub)
    from scripts.cli_finetune import add_finetune_parsers  # it imports this module's flag helpers

    add_finetune_parsers(sub)
    _add_serve_parser(sub)
    return parser


def _add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (POST /v1/analyze, /v1/jobs); settings from REELSENSE_* variables",
        description="Flags override REELSENSE_HOST, REELSENSE_PORT and REELSENSE_WORKERS. Beyond loopback "
        "it refuses to start without REELSENSE_API_KEYS (or REELSENSE_INSECURE_NO_AUTH=true).",
    )
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, default=None, help="analysis workers, each loads the models")
    serve.add_argument("--env-file", type=Path, default=None, help="read REELSENSE_* settings from this file")
    serve.add_argument(
        "--ray", action="store_true", help="deploy on Ray Serve: analyzer replicas across a Ray cluster"
    )
    serve.add_argument(
        "--address", default=None, help="with --ray: the Ray cluster (default RAY_ADDRESS, else a local Ray)"
    )
    serve.add_argument(
        "--replicas", type=int, default=None, help="with --ray: analyzer replicas (REELSENSE_RAY_REPLICAS)"
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.set_defaults(run=_serve_command)


def _serve_command(args: argparse.Namespace) -> int:
    from service.serve import serve

    return serve(
        args.host, args.port, args.workers, args.env_file, "debug" if args.verbose else "info",
        use_ray=args.ray, address=args.address, replicas=args.replicas,
    )  # fmt: skip


def _add_batch_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = sub.add_parser(
        "batch",
        help="analyse folders, files, URLs and manifests into one results file; resumable",
        description="One row per input; bad videos become error rows. Re-run the same command after a "
        "crash or Ctrl-C to finish: inputs already in the results are skipped.",
    )
    batch.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="a folder (recursive), a file, an http(s) URL, or a "
        "manifest (.csv/.jsonl with a path or url column; relative paths from its folder)",
    )  # fmt: skip
    batch.add_argument("--out", required=True, type=Path, help="results file (appended to, resumable)")
    batch.add_argument(
        "--format", choices=["jsonl", "parquet", "csv"], default=None, help="default: from --out's suffix, "
        "else jsonl; parquet/csv keep a journal beside it (OUT.journal.jsonl) for resuming",
    )  # fmt: skip
    batch.add_argument("--glob", default=None, metavar="PATTERN", help="files to take from folders "
                       "(e.g. '*.mp4'), instead of every video/audio extension")  # fmt: skip
    batch.add_argument("--retry-failed", action="store_true", help="re-run inputs whose row is an error")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    batch.add_argument("--engine", choices=["ray", "inprocess"], default="ray",
                       help="ray: several videos at once on all cores or a cluster (default); "
                       "inprocess: in this process, --clips-at-once at a time")  # fmt: skip
    batch.add_argument("--workers", type=int, default=None, help="Ray clip actors (default: one per 2 cores)")
    add_clips_at_once_flag(batch)
    batch.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    _add_fetch_flags(batch)
    _add_media_flags(batch)
    _add_analyzer_flags(batch)
    batch.set_defaults(run=_batch_command)


def _guarded(call: Callable[[], Any]) -> Any:
    """Run a whole-manifest command; unusable flags, labels or models end it with status 2 (None)."""
    try:
        return call()
    except MediaError as exc:
        print(f"reelsense: {exc.message} ({exc.code.value})", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"reelsense: {exc}", file=sys.stderr)
    return None


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="a file path or an http(s) URL")
    parser.add_argument("--pretty", action="store_true", help="indented JSON for people")
    _add_fetch_flags(parser)


def _add_fetch_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="let URLs reach this internal network (e.g. 10.0.0.0/8 for a media server); repeatable",
    )
    parser.add_argument("--max-download-mb", type=float, default=2048, help="refuse larger downloads")
    parser.add_argument("--fetch-timeout", type=float, default=300, help="seconds for a whole download")


def _add_media_flags(parser: argparse.ArgumentParser) -> None:
    frames, defaults = FrameConfig(), AnalyzerConfig()  # the defaults, written once (pipeline/config.py)
    parser.add_argument(
        "--frames", type=int, default=frames.num_frames, help=f"frames sampled (default {frames.num_frames})"
    )
    parser.add_argument(
        "--fps", type=float, default=frames.fps, help="sample at this rate instead of --frames"
    )
    parser.add_argument("--max-frames", type=int, default=frames.max_frames, help="cap for --fps sampling")
    parser.add_argument("--size", type=int, default=frames.size, help="output frames are SIZE x SIZE")
    parser.add_argument("--resize", choices=["crop", "pad"], default=frames.resize, help="fit to square by")
    parser.add_argument("--backend", choices=["pyav", "decord"], default=frames.backend, help="frame decoder")
    parser.add_argument("--no-transcript", action="store_true", help="skip speech recognition")
    parser.add_argument(
        "--language",
        default=defaults.media.transcribe.language,
        help="spoken language (ISO 639-1); default: detect",
    )
    parser.add_argument(
        "--whisper-model",
        default=defaults.media.transcribe.model,
        help="package:whisper-base | local:DIR | hf:ORG/NAME@REVISION",
    )
    parser.add_argument(
        "--word-timestamps",
        action=argparse.BooleanOptionalAction,
        default=defaults.media.transcribe.word_timestamps,
        help="each transcript word's start and end (costs ~10%% more transcription time)",
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=defaults.device, help="where every model runs"
    )
    parser.add_argument("--cache-dir", default=None, help="where bundled weights are unpacked")


def add_clips_at_once_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clips-at-once", type=int, default=1, metavar="N",
        help="inprocess engine: videos analysed at once, in threads over one set of models (default 1; "
        "the Ray engine sizes its own: 2 per actor)",
    )  # fmt: skip


def _add_analyzer_flags(parser: argparse.ArgumentParser) -> None:
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("--labels", default=None, help="comma-separated categories to choose from")
    labels.add_argument("--labels-file", default=None, help="categories file: one per line, or JSON")
    parser.add_argument("--head", default=None, help="a fine-tuned fusion head's directory")
    defaults = AnalyzerConfig()
    parser.add_argument("--vision-model", default=defaults.vision_model, help="vision model spec")
    parser.add_argument("--text-model", default=defaults.text_model, help="text encoder spec")
    parser.add_argument(
        "--bridge-model", default=defaults.bridge_model, help="the vision bridge's sentence encoder spec"
    )
    parser.add_argument(
        "--expand-nouns",
        action=argparse.BooleanOptionalAction,
        default=defaults.expand_nouns,
        help="append each English noun's WordNet hypernyms to the transcript before category matching",
    )
    parser.add_argument(
        "--segment-seconds", type=float, default=defaults.segment_s, help="length of reported segments"
    )


def _fetch_config(args: argparse.Namespace) -> FetchConfig:
    return FetchConfig(
        max_bytes=int(args.max_download_mb * 1024 * 1024),
        total_timeout_s=args.fetch_timeout,
        allow_networks=tuple(args.allow_network),
    )


def _cache_dir(args: argparse.Namespace) -> str:
    from models.bundled import default_cache_dir

    return str(args.cache_dir or default_cache_dir())


def _media_config(args: argparse.Namespace) -> MediaConfig:
    return MediaConfig(
        fetch=_fetch_config(args),
        frames=FrameConfig(
            num_frames=args.frames,
            fps=args.fps,
            max_frames=args.max_frames,
            size=args.size,
            resize=args.resize,
            backend=args.backend,
        ),
        transcribe=TranscribeConfig(
            model=args.whisper_model, language=args.language, word_timestamps=args.word_timestamps
        ),
    )


def _probe_command(args: argparse.Namespace) -> SourceHandler:
    from pipeline.fetch import open_source
    from pipeline.probe import probe

    fetch = _fetch_config(args)

    def handle(source: str) -> dict[str, Any]:
        with open_source(source, fetch) as local:
            return {"media": probe(local.path).to_dict()}

    return handle


def _inspect_command(args: argparse.Namespace) -> SourceHandler:
    from pipeline.fetch import open_source
    from pipeline.media import decode_media

    config = _media_config(args)
    recognizer = None
    if not args.no_transcript:
        from pipeline.transcribe import Transcriber

        # Loaded once, for every source.
        recognizer = Transcriber(config.transcribe, device=args.device, cache_dir=_cache_dir(args))

    def handle(source: str) -> dict[str, Any]:
        with open_source(source, config.fetch) as local:
            return decode_media(local.path, config, recognizer).to_dict()

    return handle


def _labels(args: argparse.Namespace) -> LabelSet | None:
    from models.labels import custom_labels, labels_from_file

    if args.labels:
        return custom_labels([name.strip() for name in args.labels.split(",") if name.strip()])
    if args.labels_file:
        return labels_from_file(args.labels_file)
    return None


def _analyzer_config(args: argparse.Namespace) -> AnalyzerConfig:
    from pipeline.analyze import AnalyzerConfig

    return AnalyzerConfig(
        media=_media_config(args),
        vision_model=args.vision_model,
        text_model=args.text_model,
        bridge_model=args.bridge_model,
        expand_nouns=args.expand_nouns,
        device=args.device,
        cache_dir=_cache_dir(args),
        head=args.head,
        segment_s=args.segment_seconds,
        concurrent_clips=getattr(args, "clips_at_once", 1),
    )


def _analyze_command(args: argparse.Namespace) -> SourceHandler:
    from pipeline.analyze import Analyzer

    labels = _labels(args)
    analyzer = Analyzer(_analyzer_config(args))  # models load once, then every source reuses them

    def handle(source: str) -> dict[str, Any]:
        return analyzer.analyze(source, labels).to_dict()

    return handle


def _batch_command(args: argparse.Namespace) -> int:
    from scripts.batch import BatchOptions, BatchUsageError, executor_factory, format_for, run_batch

    try:
        options = BatchOptions(
            inputs=tuple(args.inputs),
            out=args.out,
            fmt=format_for(args.out, args.format),
            pattern=args.glob,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
        )
        labels = _labels(args)
        make_executor = executor_factory(
            _analyzer_config(args), args.engine, workers=args.workers, address=args.address
        )
        return run_batch(options, make_executor, labels).exit_code
    except MediaError as exc:  # bad labels or models that cannot load: nothing can be analysed
        print(f"reelsense: {exc.message} ({exc.code.value})", file=sys.stderr)
    except BatchUsageError as exc:
        print(f"reelsense: {exc}", file=sys.stderr)
    except KeyboardInterrupt:  # before the journal was open (discovery, model loading): nothing to keep
        return 130
    return 2


def _run_sources(sources: Sequence[str], handle: SourceHandler, *, pretty: bool, summary: bool) -> int:
    failed = 0
    for source in sources:
        try:
            record = handle(source)
            record = record if "status" in record else {"source": source, "status": "ok", **record}
        except MediaError as exc:
            record = {"source": source, "status": "error", "error": exc.to_dict()}
        except Exception as exc:  # a bug must not cost the other sources their results
            log.exception("internal error on %s", source)
            record = {"source": source, "status": "error", "error": internal_error(exc).to_dict()}
        failed += record["status"] == "error"
        if summary:
            print(summarize(record), flush=True)
        else:
            print(json.dumps(record, indent=2 if pretty else None, default=_json_default), flush=True)
    return 1 if failed else 0


def _json_default(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
