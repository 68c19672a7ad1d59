"""`posekit models list | pull | info`: the zoo on the command line."""

from __future__ import annotations

import argparse

from posekit.errors import PosekitError
from posekit.hub.cache import cached_files, file_problems, local_paths, models_dir
from posekit.hub.fetch import ensure_files
from posekit.hub.registry import NPM_LICENSE, NPM_PACKAGE, NPM_VERSION, ModelSpec, get_spec, list_specs

MB = 1e6


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, download and describe the model zoo")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    listing = actions.add_parser("list", help="what posekit.load accepts (the default marked); --networks: the raw "
                                                  "zoo networks and whether they are cached")
    listing.add_argument("--networks", action="store_true", help="list the raw networks instead")
    listing.set_defaults(func=cmd_list)

    pull = actions.add_parser("pull", help="download models into the cache (verified by sha512 and sha256)")
    pull.add_argument("names", nargs="*", metavar="NAME", help="models to download")
    pull.add_argument("--all", action="store_true", help="download every zoo model")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    pull.set_defaults(func=cmd_pull)

    info = actions.add_parser("info", help="all metadata of one network, or the parts of an estimator/pipeline")
    info.add_argument("name", metavar="NAME")
    info.set_defaults(func=cmd_info)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _input_text(spec: ModelSpec) -> str:
    h, w = spec.input_size
    size = f"{h}x{w}" if h and w else "any (x32)"
    return size + (f" {spec.layout}" if spec.layout != "NHWC" else "")


def _normalisation(spec: ModelSpec) -> str:
    """How 0..255 pixels become the fed values, e.g. "RGB / 127.5 - 1"."""
    scale, offset, pixels = spec.input_scale, spec.input_offset, spec.channels
    if isinstance(scale, tuple) or isinstance(offset, tuple):
        def vec(v: float | tuple[float, ...]) -> str:
            return "(" + ", ".join(f"{x:.6g}" for x in (v if isinstance(v, tuple) else (v,) * 3)) + ")"

        return f"{pixels} * {vec(scale)} + {vec(offset)} per channel"
    if scale == 1 and offset == 0:
        return f"raw {pixels} 0..255"
    text = f"{pixels} / {1 / scale:g}"
    if offset:
        text += f" {'-' if offset < 0 else '+'} {abs(offset):g}"
    return text


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def cmd_list(args: argparse.Namespace) -> int:
    if not args.networks:
        return list_estimators()
    rows = [["NAME", "TASK", "INPUT", "KEYPOINTS", "CACHED", "SIZE MB"]]
    for spec in list_specs():
        rows.append([
            spec.name, spec.task, _input_text(spec), spec.keypoints or "-",
            "yes" if cached_files(spec) else "no", f"{spec.total_size / MB:.1f}",
        ])
    print(_table(rows))
    print(f"\ncache: {models_dir()}  (package {NPM_PACKAGE}@{NPM_VERSION})")
    return 0


def list_estimators() -> int:
    """The names posekit.load and `posekit predict --model` accept, the defaults marked."""
    from posekit.estimators.registry import model_info, models

    rows = [["NAME", "KEYPOINTS", "INPUT", "DEFAULT", "DESCRIPTION"]]
    for name in models():
        info = model_info(name)
        rows.append([name, info.keypoints, info.input, info.default or "", info.description])
    print(_table(rows))
    print("\nalso: any DETECTOR+POSE pair (detectors: centernet, nanodet), or a .onnx/.safetensors file; raw "
          "networks: posekit models list --networks")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    if args.all == bool(args.names):
        raise PosekitError("name the models to pull, or pass --all (not both); see `posekit models list`")
    specs = list_specs() if args.all else [get_spec(n) for n in dict.fromkeys(args.names)]
    missing = [s for s in specs if file_problems(s, full=True)]
    cached = [s.name for s in specs if s not in missing]
    if cached:
        print(f"already cached and verified: {', '.join(cached)}")
    if not missing:
        print(f"nothing to download; cache: {models_dir()}")
        return 0
    ensure_files(missing, progress=not args.quiet)
    for spec in missing:
        print(f"pulled {spec.name} ({spec.total_size / MB:.1f} MB)")
    print(f"cache: {models_dir()}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from posekit.estimators.registry import model_info, models

    if args.name in models() or "+" in args.name:
        info = model_info(args.name)
        print("\n".join([
            f"name:        {info.name}" + (f"  (default for {info.default})" if info.default else ""),
            f"description: {info.description}",
            f"keypoints:   {info.keypoints}",
            f"input:       {info.input}",
            f"networks:    {', '.join(info.networks)}  (posekit models info NETWORK for each)",
        ]))
        return 0
    spec = get_spec(args.name)
    lines = [
        f"name:        {spec.name}",
        f"task:        {spec.task}",
        f"description: {spec.description}",
        f"source:      {spec.source}",
        f"license:     {spec.license}",
        f"package:     {NPM_PACKAGE}@{NPM_VERSION} ({NPM_LICENSE})",
        f"input:       {spec.input_node} {spec.input_dtype} {list(spec.input_shape)} {spec.layout}, "
        f"values = {_normalisation(spec)}",
        f"keypoints:   {spec.keypoints or '-'}",
    ]
    if spec.keypoint_channels is not None:
        lines.append(f"  skeleton keypoint k = output channel {list(spec.keypoint_channels)}[k]")
    lines.append("outputs:")
    lines += [f"  {node}: {meaning}" for node, meaning in spec.outputs.items()]
    if spec.heads:
        lines.append("heads (intermediate tensors):")
        lines += [f"  {k}: {node}  {spec.head_meanings.get(k, '')}".rstrip() for k, node in spec.heads.items()]
    lines.append("files:")
    lines += [f"  {rel}  {spec.sizes.get(rel, 0)} bytes  sha256 {sha}" for rel, sha in spec.files.items()]
    problems = file_problems(spec)
    lines.append(f"cached:      {'no (' + ', '.join(sorted(set(problems.values()))) + ')' if problems else 'yes'}")
    lines += [f"  {path}" for path in local_paths(spec).values()]
    print("\n".join(lines))
    return 0
